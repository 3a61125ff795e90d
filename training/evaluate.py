"""Metrics and evaluation artifacts shared by both model families.

`compute_metrics` turns gold and predicted labels into the figures every run logs
under the same names: accuracy, macro-F1, per-class precision / recall / F1, and the
binary F1 of propaganda language (`quoted` or `adopted`) against `neutral`.
`write_evaluation` writes the confusion-matrix plot, the classification report and
the misclassified sentences into a folder. Nothing here knows about MLflow or models.
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
)

from classifier.scoring import LABELS


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
    metrics["propaganda_f1"] = f1_score(
        [label != "neutral" for label in gold],
        [label != "neutral" for label in predicted],
        zero_division=0,
    )
    return {name: float(value) for name, value in metrics.items()}


def write_evaluation(
    folder: Path,
    split: str,
    texts: Sequence[str],
    ids: Sequence[str],
    gold: Sequence[str],
    probabilities: np.ndarray,
) -> dict[str, float]:
    """Write the plot, report and errors of one split into `folder`; return its metrics."""
    import matplotlib

    matplotlib.use("Agg")  # no screen on servers and CI
    import matplotlib.pyplot as plt

    folder.mkdir(parents=True, exist_ok=True)
    predicted = [LABELS[i] for i in probabilities.argmax(axis=1)]
    metrics = compute_metrics(gold, predicted)

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
