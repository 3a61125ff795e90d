"""Metrics and evaluation artifacts shared by both model families.

`compute_metrics` turns gold and predicted labels into the figures every run logs
under the same names: accuracy, macro-F1, per-class precision / recall / F1, and the
binary view of propaganda language (`quoted` or `adopted`) against `neutral`: its F1,
precision and recall, the neutral false-positive rate (`neutral_fpr`, the share of
neutral sentences flagged) and the precision the flag would have at a real-world
prevalence of 3% (`precision_at_3pct`, computed from recall and `neutral_fpr`).
`write_evaluation` scores one view at the model's operating point and writes the
confusion matrix, the reliability diagram, the classification report and the
misclassified sentences into a folder. Nothing here knows about MLflow or models.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    classification_report,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
    recall_score,
)

from classifier.scoring import LABELS, decide

CALIBRATION_BINS = 15  # the usual choice for expected calibration error
# The prevalence at which the flag's precision is also reported: real outlets carry
# propaganda language in a few sentences in a hundred.
REAL_WORLD_PREVALENCE = 0.03


def compute_metrics(gold: Sequence[str], predicted: Sequence[str]) -> dict[str, float]:
    """Figures for one split. A per-class figure with nothing to measure is left out.

    Macro-F1 averages over the labels that occur in `gold` or `predicted` (scikit-learn's
    default), so a subset without `adopted` sentences, like the seed articles, is not
    charged a zero for a class it cannot contain.
    """
    if len(gold) != len(predicted) or not gold:
        raise ValueError(
            f"expected two equally long, non-empty label lists, "
            f"found {len(gold)} and {len(predicted)}"
        )
    unknown = (set(gold) | set(predicted)) - set(LABELS)
    if unknown:
        raise ValueError(f"expected labels in {LABELS}, found {sorted(unknown)}")
    metrics = {
        "accuracy": accuracy_score(gold, predicted),
        "macro_f1": f1_score(gold, predicted, average="macro", zero_division=0),
    }
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold, predicted, labels=list(LABELS), zero_division=np.nan
    )
    for i, label in enumerate(LABELS):
        for name, values in (("precision", precision), ("recall", recall), ("f1", f1)):
            if not math.isnan(values[i]):
                metrics[f"{name}_{label}"] = float(values[i])
    gold_flag = [label != "neutral" for label in gold]
    flag = [label != "neutral" for label in predicted]
    metrics["propaganda_f1"] = f1_score(gold_flag, flag, zero_division=0)
    metrics["propaganda_precision"] = precision_score(gold_flag, flag, zero_division=0)
    # The figure a newsroom feels first: the share of plain sentences flagged as propaganda.
    flagged = [p for g, p in zip(gold_flag, flag, strict=True) if not g]
    if flagged:
        metrics["neutral_fpr"] = sum(flagged) / len(flagged)
    if any(gold_flag):
        metrics["propaganda_recall"] = recall_score(gold_flag, flag, zero_division=0)
    if flagged and any(gold_flag):
        metrics["precision_at_3pct"] = precision_at_prevalence(
            metrics["propaganda_recall"], metrics["neutral_fpr"]
        )
    return {name: float(value) for name, value in metrics.items()}


def write_evaluation(
    folder: Path,
    split: str,
    texts: Sequence[str],
    ids: Sequence[str],
    gold: Sequence[str],
    probabilities: np.ndarray,
    threshold: float | None = None,
    has_term: Sequence[bool] | None = None,
) -> dict[str, float]:
    """Write the plots, report and errors of one view into `folder`; return its metrics.

    Labels are decided at the operating point `threshold`, with `has_term` where the model
    requires a lexicon term (see `classifier.scoring.decide`); `ece` measures the
    calibration of the probabilities themselves.
    """
    import matplotlib

    matplotlib.use("Agg")  # no screen on servers and CI
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    predicted = decide(probabilities, threshold, has_term)
    metrics = compute_metrics(gold, predicted)
    metrics["ece"] = expected_calibration_error(probabilities, gold)
    reliability_diagram(probabilities, gold, folder / f"{split}_reliability.png", split)

    report = classification_report(gold, predicted, labels=list(LABELS), digits=3, zero_division=0)
    (folder / f"{split}_classification_report.txt").write_text(report, encoding="utf-8")

    matrix = confusion_matrix(gold, predicted, labels=list(LABELS))
    figure, axes = plt.subplots(figsize=(4.8, 4.2))
    axes.imshow(matrix, cmap="Blues")
    axes.set_xticks(range(len(LABELS)), LABELS)
    axes.set_yticks(range(len(LABELS)), LABELS)
    axes.set_xlabel("predicted")
    axes.set_ylabel("gold")
    axes.set_title(f"{split}: macro-F1 {metrics['macro_f1']:.3f}")
    for (row, column), count in np.ndenumerate(matrix):
        colour = "white" if count > matrix.max() / 2 else "black"
        axes.text(column, row, str(count), ha="center", va="center", color=colour)
    figure.tight_layout()
    figure.savefig(folder / f"{split}_confusion_matrix.png", dpi=120)
    plt.close(figure)

    with (folder / f"{split}_misclassified.jsonl").open("w", encoding="utf-8") as out:
        for i in np.flatnonzero(np.array(gold) != np.array(predicted)):
            scores = dict(zip(LABELS, probabilities[i].round(4).tolist(), strict=True))
            row = {
                "id": ids[i],
                "text": texts[i],
                "gold": gold[i],
                "predicted": predicted[i],
                "scores": scores,
            }
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    return metrics


def expected_calibration_error(
    probabilities: np.ndarray, gold: list[str], bins: int = CALIBRATION_BINS
) -> float:
    """Top-label ECE: the gap between confidence and accuracy, averaged over confidence bins."""
    confidence, correct = _confidence_and_correct(probabilities, gold)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(confidence[inside].mean() - correct[inside].mean())
    return float(error)


def reliability_diagram(
    probabilities: np.ndarray, gold: list[str], path: Path, title: str,
    bins: int = CALIBRATION_BINS,
) -> None:  # fmt: skip
    """Plot accuracy against confidence per bin (the diagonal is perfect calibration)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    confidence, correct = _confidence_and_correct(probabilities, gold)
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    centres, accuracy, counts = [], [], []
    for b in range(bins):
        inside = which == b
        if inside.any():
            centres.append(confidence[inside].mean())
            accuracy.append(correct[inside].mean())
            counts.append(int(inside.sum()))
    figure, axes = plt.subplots(figsize=(4.8, 4.2))
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1)
    axes.scatter(centres, accuracy, s=[10 + 2 * c for c in counts], color="tab:blue")
    axes.plot(centres, accuracy, color="tab:blue", linewidth=1)
    axes.set_xlim(0, 1)
    axes.set_ylim(0, 1)
    axes.set_xlabel("confidence (top label)")
    axes.set_ylabel("accuracy")
    ece = expected_calibration_error(probabilities, gold, bins)
    axes.set_title(f"{title}: ECE {ece:.3f}")
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def precision_at_prevalence(
    recall: float, false_positive_rate: float, prevalence: float = REAL_WORLD_PREVALENCE
) -> float:
    """The flag's precision if propaganda language had `prevalence`, from recall and FPR.

    Bayes' rule: of the flags, recall * prevalence are right and FPR * (1 - prevalence)
    are false alarms. The evaluation sets are far richer in propaganda than real news,
    so their own precision flatters the flag.
    """
    right = recall * prevalence
    wrong = false_positive_rate * (1 - prevalence)
    return right / (right + wrong) if right + wrong > 0 else 0.0


def _confidence_and_correct(probabilities: np.ndarray, gold: list[str]):
    probabilities = np.asarray(probabilities)
    predicted = probabilities.argmax(axis=1)
    gold_ids = np.array([LABELS.index(label) for label in gold])
    return probabilities.max(axis=1), (predicted == gold_ids).astype(float)
