"""Load a trained model and score sentences or whole articles.

    model = classifier.load()              # best registered model (dev macro-F1)
    model = classifier.load("bert")        # best of one family
    model.predict(["frase uno", "frase due"])   # -> list[Prediction]
    model.score_article(text)              # -> list[(start, end, sentence, Prediction)]

Every input is checked at this boundary: a user mistake gets an `InputError` that
names the position, never a traceback from deep inside a model. Predictions are
thread-safe: several threads may share one loaded `Model`.
Deliberately left out: training (`training/`) and output formatting (`classifier.cli`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from classifier.bundle import (
    BUNDLE_ARTIFACT,
    BUNDLE_FILE,
    FAMILIES,
    LABELS,
    LEXICON_FILE,
    BundleError,
)
from classifier.explain import Attribution
from classifier.lexicon import Lexicon, LexiconError, Span
from classifier.scoring import Scorer, decide, load_scorer
from classifier.segment import split_sentences
from classifier.store import ModelNotFoundError, model_directory, resolve, resolve_uri
from classifier.text import text_problem


class InputError(ValueError):
    """Text given to a model is not what it can score; the message names the position."""


@dataclass(frozen=True)
class Prediction:
    label: str  # "neutral" | "quoted" | "adopted", decided at the model's operating point
    scores: dict[str, float]  # one calibrated probability per label, summing to 1
    spans: tuple[Span, ...]  # lexicon terms found: (start, end, term), offsets into the input
    # With predict(..., explain=True): the words that pushed towards the label, best first.
    attributions: tuple[Attribution, ...] = ()


class Model:
    """A loaded scorer plus the lexicon it was trained with and its operating point.

    `threshold`: a sentence is labelled propaganda language (`quoted` or `adopted`,
    whichever is more probable) when its probability of `neutral` is below it. Training
    chooses it on dev for a target neutral false-positive rate; None means the most
    probable label. `require_term`: only a sentence in which the lexicon finds a term can
    be flagged; the others are `neutral`.
    """

    def __init__(
        self,
        scorer: Scorer,
        lexicon: Lexicon,
        source: str,
        threshold: float | None = None,
        require_term: bool = False,
    ):
        self.scorer = scorer
        self.lexicon = lexicon
        self.source = source
        self.threshold = threshold
        self.require_term = require_term

    @property
    def family(self) -> str:
        return self.scorer.family

    def __repr__(self) -> str:
        return f"Model(family={self.family!r}, source={self.source!r})"

    def predict(self, texts: Sequence[str], *, explain: bool = False) -> list[Prediction]:
        """One `Prediction` per text, in the same order.

        `explain=True` also gives each prediction its `attributions`: the few words that
        pushed it towards its label, as spans into the text with a weight
        (`classifier.explain`; for BERT, integrated gradients, many times the cost).
        """
        texts = check_texts(texts)
        if not texts:
            return []
        probabilities = self.scorer.predict_proba(texts)
        spans = [tuple(self.lexicon.find(text)) for text in texts]
        has_term = [bool(found) for found in spans] if self.require_term else None
        labels = decide(probabilities, self.threshold, has_term)
        reasons = self.scorer.explain(texts, labels) if explain else [()] * len(texts)
        predictions = []
        for row, label, found, reason in zip(probabilities, labels, spans, reasons, strict=True):
            scores = {name: float(p) for name, p in zip(LABELS, row, strict=True)}
            predictions.append(
                Prediction(label=label, scores=scores, spans=found, attributions=tuple(reason))
            )
        return predictions

    def score_article(
        self, text: str, *, explain: bool = False
    ) -> list[tuple[int, int, str, Prediction]]:
        """Split Italian text into sentences and score each one.

        Returns (start, end, sentence, prediction) with `text[start:end] == sentence`;
        the prediction's spans are offsets into the sentence (add `start` for the article).
        """
        if problem := text_problem(text):
            raise InputError(f"the article: {problem}")
        bounds = split_sentences(text)
        predictions = self.predict([text[start:end] for start, end in bounds], explain=explain)
        return [
            (start, end, text[start:end], prediction)
            for (start, end), prediction in zip(bounds, predictions, strict=True)
        ]


def check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise InputError(
            "expected a list of sentences, found a single string: wrap it as [text], "
            "or use score_article() for a whole article"
        )
    if isinstance(texts, bytes | bytearray):
        raise InputError("expected a list of strings, found bytes: decode them first")
    if texts is None or not isinstance(texts, Sequence):
        raise InputError(f"expected a list of strings, found {type(texts).__name__}")
    for position, text in enumerate(texts):
        if problem := text_problem(text):
            raise InputError(f"item {position}: {problem}")
    return list(texts)


def load(
    model: str | os.PathLike | None = None,
    *,
    fast: bool = True,
    threshold: float | None = None,
    require_term: bool | None = None,
) -> Model:
    """Load a trained model.

    `model` is None (the registered `@champion`), a family name ("baseline" or "bert":
    `@baseline`, `@bert`), any MLflow model URI (`models:/framing-classifier/3`,
    `runs:/<id>/model`), or a local directory holding an MLflow model or a model bundle.
    BERT scores in bf16 where the CPU has it natively and training measured it within 0.01
    macro-F1 of fp32 (`classifier.scoring.fast_precision`), else in fp32; `fast=False`
    always keeps fp32. `model.scorer.precision` tells which.
    `threshold` and `require_term` override the operating point stored with the model
    (see `Model`).
    """
    if threshold is not None and not (isinstance(threshold, int | float) and 0 <= threshold <= 1):
        raise InputError(f"expected a threshold between 0 and 1, found {threshold!r}")
    bundle, source = locate_bundle(model)
    try:
        lexicon = Lexicon.read(bundle / LEXICON_FILE)
        scorer = load_scorer(bundle, fast=fast, lexicon=lexicon)
    except (BundleError, LexiconError, OSError, UnicodeDecodeError) as error:
        raise ModelNotFoundError(f"Cannot load model {source!r}: {error}") from None
    return Model(
        scorer,
        lexicon,
        source,
        scorer.threshold if threshold is None else threshold,
        scorer.require_term if require_term is None else bool(require_term),
    )


def locate_model(model: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The local directory of `model` (see `load`), an MLflow model or a bare bundle, and
    where it came from.

    A registered model of a local store is read in place; one of a remote store is
    downloaded once into the cache (`classifier.store`). Nothing is written to the store.
    """
    if model is None or model in FAMILIES:
        resolved = resolve(model)
        return model_directory(resolved), resolved.uri
    text = str(model)
    if not text.strip():
        raise ModelNotFoundError(
            "Unknown model '': expected 'baseline', 'bert', an MLflow model URI or a directory"
        )
    path = Path(text).expanduser()
    if path.is_dir():
        return path, text
    if text.startswith(("models:/", "runs:/")):
        return model_directory(resolve_uri(text)), text
    raise ModelNotFoundError(
        f"Unknown model {text!r}: expected 'baseline', 'bert', an MLflow model URI such as "
        f"'models:/framing-classifier/1', or an existing model directory."
    )


def locate_bundle(model: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The local bundle directory of `model` (see `load`) and where it came from."""
    directory, source = locate_model(model)
    return _bundle_in(directory, source), source


def _bundle_in(path: Path, source: str) -> Path:
    """The bundle of an MLflow model directory (with MLmodel), or `path` if it is a bundle."""
    bundle = path
    if (path / "MLmodel").is_file():
        # Read the MLmodel file as the YAML it is: importing MLflow costs a second.
        import yaml

        try:
            meta = yaml.safe_load((path / "MLmodel").read_text(encoding="utf-8"))
            artifacts = meta["flavors"]["python_function"].get("artifacts") or {}
            relative = artifacts[BUNDLE_ARTIFACT]["path"] if BUNDLE_ARTIFACT in artifacts else ""
        except (OSError, UnicodeDecodeError, yaml.YAMLError, KeyError, TypeError, AttributeError):
            raise ModelNotFoundError(
                f"{source}: its MLmodel file is not an MLflow model description this project "
                "wrote; retrain with `make train`"
            ) from None
        bundle = path / relative if relative else path
    if not (bundle / BUNDLE_FILE).is_file():
        raise ModelNotFoundError(
            f"{source} is not a model of this project: expected an MLflow model logged by "
            f"`make train` or a bundle with {BUNDLE_FILE}."
        )
    return bundle
