"""Calibrated probabilities and the operating point of the propaganda flag, fitted on dev.

Both families end their training here. `fit_operating_point` fits one temperature on
the dev logits (temperature scaling, Guo et al. 2017: the logits are divided by T
before the softmax, T chosen to minimise dev log-loss), then chooses the threshold on
P(neutral) below which a sentence is flagged: the largest one that keeps the dev
neutral false-positive rate at or under `max_neutral_fpr`. With `require_term` (the
default) a sentence can be flagged only where the lexicon finds a term in it, and the
threshold is chosen for that rule: the dev sentences without a term are never flagged, so
they count as neutral sentences kept. Scoring
applies all three (`classifier.scoring.softmax`, `classifier.scoring.decide`); they are
stored in the model bundle. `training.evaluate` measures the result (ECE, reliability diagrams).

Deliberately left out: any other calibration method (Platt, isotonic), and choosing
the threshold on anything but dev.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from classifier.lexicon import Lexicon
from classifier.scoring import LABELS, softmax
from training.data import ConfigError


@dataclass
class OperatingPointConfig:
    max_neutral_fpr: float = field(
        default=0.05,
        metadata={
            "help": "the most neutral sentences of dev that may be flagged (the threshold on "
            "P(neutral) is chosen for it); 5% keeps a newsroom's false alarms rare"
        },
    )
    calibrate: bool = field(
        default=True, metadata={"help": "fit a temperature on dev (False keeps T = 1)"}
    )
    require_term: bool = field(
        default=True,
        metadata={
            "help": "flag only sentences in which the lexicon finds a term (False lets the "
            "model flag any sentence); on real pages most false alarms have no term"
        },
    )

    def __post_init__(self):
        if not 0 <= self.max_neutral_fpr <= 1:
            raise ConfigError(
                f"--max_neutral_fpr: expected a rate between 0 and 1, found {self.max_neutral_fpr}"
            )


class OperatingPoint(NamedTuple):
    temperature: float
    threshold: float
    require_term: bool = False


def fit_temperature(logits: np.ndarray, gold: np.ndarray) -> float:
    """The temperature that minimises the log-loss of `softmax(logits / T)` on `gold` ids."""
    from scipy.optimize import minimize_scalar

    gold = np.asarray(gold)

    def log_loss(log_temperature: float) -> float:
        probabilities = softmax(logits, float(np.exp(log_temperature)))
        return -float(np.mean(np.log(probabilities[np.arange(len(gold)), gold] + 1e-12)))

    # Search log T in [-3, 3], T from 0.05 to 20: wide enough for any classifier here.
    result = minimize_scalar(log_loss, bounds=(-3.0, 3.0), method="bounded")
    return float(np.exp(result.x))


def choose_threshold(p_neutral: np.ndarray, gold_neutral: np.ndarray, max_fpr: float) -> float:
    """The largest threshold t on P(neutral) with at most `max_fpr` of the neutral rows below t.

    Flagging is `P(neutral) < t`, so with the neutral rows' P(neutral) sorted ascending,
    the (k+1)-th smallest value, k = floor(max_fpr * n), lets exactly the k smallest through.
    Rows that can never be flagged have P(neutral) = inf; the threshold is at most 1.
    """
    neutral = np.sort(np.asarray(p_neutral)[np.asarray(gold_neutral, dtype=bool)])
    if len(neutral) == 0:
        raise ValueError("expected neutral sentences on dev to choose a threshold, found none")
    allowed = int(np.floor(max_fpr * len(neutral) + 1e-9))
    return 1.0 if allowed >= len(neutral) else min(1.0, float(neutral[allowed]))


def fit_operating_point(
    scorer, dev, config: OperatingPointConfig, lexicon: Lexicon | None = None
) -> OperatingPoint:
    """Fit the temperature and the threshold on the dev split; set both on `scorer`.

    `lexicon` finds the terms where `config.require_term` is set.
    """
    if config.require_term and lexicon is None:
        raise ValueError("require_term needs the lexicon that finds the terms")
    texts = list(dev["text"])
    gold = np.asarray(dev["label"])
    logits = scorer.logits(texts)
    temperature = fit_temperature(logits, gold) if config.calibrate else 1.0
    probabilities = softmax(logits, temperature)
    neutral_id = LABELS.index("neutral")
    p_neutral = probabilities[:, neutral_id]
    if config.require_term:
        has_term = np.array([bool(lexicon.find(text)) for text in texts], dtype=bool)
        p_neutral = np.where(has_term, p_neutral, np.inf)
    threshold = choose_threshold(p_neutral, gold == neutral_id, config.max_neutral_fpr)
    scorer.temperature, scorer.threshold = temperature, threshold
    scorer.require_term = config.require_term
    return OperatingPoint(temperature, threshold, config.require_term)
