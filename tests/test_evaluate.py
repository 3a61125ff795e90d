"""The shared metrics match figures computed by hand, and the artifacts are written."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training.evaluate import compute_metrics, expected_calibration_error, write_evaluation

GOLD = ["neutral", "neutral", "quoted", "quoted", "adopted", "adopted"]
PREDICTED = ["neutral", "quoted", "quoted", "quoted", "adopted", "neutral"]


def test_metrics_match_a_hand_computed_example():
    metrics = compute_metrics(GOLD, PREDICTED)
    # neutral: tp 1, fp 1, fn 1; quoted: tp 2, fp 1, fn 0; adopted: tp 1, fp 0, fn 1
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    assert metrics["precision_neutral"] == pytest.approx(1 / 2)
    assert metrics["recall_neutral"] == pytest.approx(1 / 2)
    assert metrics["precision_quoted"] == pytest.approx(2 / 3)
    assert metrics["recall_quoted"] == pytest.approx(1.0)
    assert metrics["f1_quoted"] == pytest.approx(0.8)
    assert metrics["precision_adopted"] == pytest.approx(1.0)
    assert metrics["recall_adopted"] == pytest.approx(1 / 2)
    assert metrics["f1_adopted"] == pytest.approx(2 / 3)
    assert metrics["macro_f1"] == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)
    # propaganda language against neutral: tp 3, fp 1, fn 1
    assert metrics["propaganda_f1"] == pytest.approx(6 / 8)


def test_a_class_absent_from_gold_and_predictions_is_left_out_not_zeroed():
    metrics = compute_metrics(["neutral", "quoted"], ["neutral", "quoted"])
    assert metrics["macro_f1"] == 1.0
    assert not any(name.endswith("_adopted") for name in metrics)


def test_metrics_refuse_mismatched_or_unknown_labels():
    with pytest.raises(ValueError, match="equally long"):
        compute_metrics(["neutral"], [])
    with pytest.raises(ValueError, match="expected labels"):
        compute_metrics(["neutral"], ["propaganda"])


def test_evaluation_writes_plot_report_and_misclassified(tmp_path):
    label_index = {"neutral": 0, "quoted": 1, "adopted": 2}
    probabilities = np.eye(3)[[label_index[label] for label in PREDICTED]] * 0.7 + 0.1
    texts = [f"frase numero {i}" for i in range(len(GOLD))]
    ids = [f"s-{i}" for i in range(len(GOLD))]
    metrics = write_evaluation(tmp_path, "test", texts, ids, GOLD, probabilities)
    assert metrics.pop("ece") == pytest.approx(expected_calibration_error(probabilities, GOLD))
    assert metrics == compute_metrics(GOLD, PREDICTED)
    assert (tmp_path / "test_reliability.png").read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / "test_confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert "adopted" in (tmp_path / "test_classification_report.txt").read_text()
    wrong = [json.loads(line) for line in (tmp_path / "test_misclassified.jsonl").open()]
    assert [(row["id"], row["gold"], row["predicted"]) for row in wrong] == [
        ("s-1", "neutral", "quoted"),
        ("s-5", "adopted", "neutral"),
    ]
