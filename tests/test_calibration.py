"""Temperature scaling, the operating point and their round trip through a saved model."""

from __future__ import annotations

import json

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import classifier
from classifier.api import locate_bundle
from classifier.bundle import BUNDLE_FILE
from classifier.scoring import decide, softmax
from classifier.store import REGISTERED_MODEL_NAME
from training import baseline, calibration
from training.data import ConfigError, DataConfig
from training.evaluate import expected_calibration_error, precision_at_prevalence


def test_temperature_scaling_recovers_the_temperature_that_sharpened_calibrated_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(20000, 3)) * 2
    probabilities = softmax(logits)
    gold = np.array([rng.choice(3, p=row) for row in probabilities])
    # Sampled from softmax(logits): calibrated at T = 1, so logits * 3 need T = 3.
    assert calibration.fit_temperature(logits * 3, gold) == pytest.approx(3.0, rel=0.05)
    assert calibration.fit_temperature(logits, gold) == pytest.approx(1.0, rel=0.05)


def test_the_threshold_keeps_the_neutral_false_positive_rate_at_the_target():
    p_neutral = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 0.05])
    gold_neutral = np.array([True] * 10 + [False])
    assert calibration.choose_threshold(p_neutral, gold_neutral, 0.2) == 0.3
    assert calibration.choose_threshold(p_neutral, gold_neutral, 0.0) == 0.1
    assert calibration.choose_threshold(p_neutral, gold_neutral, 1.0) == 1.0
    threshold = calibration.choose_threshold(p_neutral, gold_neutral, 0.25)
    assert np.mean(p_neutral[gold_neutral] < threshold) <= 0.25
    with pytest.raises(ValueError, match="neutral sentences"):
        calibration.choose_threshold(p_neutral, np.zeros(11, dtype=bool), 0.1)
    # Rows that can never be flagged (no lexicon term) count as neutral sentences kept.
    never = np.where(np.arange(11) < 5, np.inf, p_neutral)
    assert calibration.choose_threshold(never, gold_neutral, 0.2) == 0.8
    assert calibration.choose_threshold(never, gold_neutral, 0.5) == 1.0


def test_decide_flags_below_the_threshold_and_then_takes_the_likelier_propaganda_label():
    probabilities = np.array([[0.5, 0.3, 0.2], [0.35, 0.25, 0.4], [0.9, 0.06, 0.04]])
    assert decide(probabilities) == ["neutral", "adopted", "neutral"]
    assert decide(probabilities, 0.6) == ["quoted", "adopted", "neutral"]
    assert decide(probabilities, 0.0) == ["neutral"] * 3
    assert decide(probabilities, 1.0) == ["quoted", "adopted", "quoted"]


def test_decide_leaves_rows_without_a_lexicon_term_neutral():
    probabilities = np.array([[0.5, 0.3, 0.2], [0.35, 0.25, 0.4], [0.2, 0.7, 0.1]])
    has_term = [True, False, True]
    assert decide(probabilities, 0.6, has_term) == ["quoted", "neutral", "quoted"]
    assert decide(probabilities, None, has_term) == ["neutral", "neutral", "quoted"]
    assert decide(probabilities, 1.0, [False] * 3) == ["neutral"] * 3


def test_calibration_error_and_precision_at_prevalence_known_answers():
    gold = ["neutral", "quoted", "neutral", "adopted"]
    sure_and_right = np.eye(3)[[0, 1, 0, 2]]
    assert expected_calibration_error(sure_and_right, gold) == 0.0
    half_right = np.tile([0.9, 0.05, 0.05], (4, 1))  # always neutral at 0.9, right half the time
    assert expected_calibration_error(half_right, gold) == pytest.approx(0.4)
    # 80% recall, 20% false alarms, 3% prevalence: 0.024 right flags for 0.194 wrong ones.
    assert precision_at_prevalence(0.8, 0.2) == pytest.approx(0.024 / 0.218)


def test_operating_point_config_refuses_a_rate_outside_zero_and_one():
    with pytest.raises(ConfigError, match="--max_neutral_fpr"):
        calibration.OperatingPointConfig(max_neutral_fpr=5)


def test_the_operating_point_is_saved_reloaded_and_applied(fixture_dir, tracking_store):
    data_config = DataConfig(fixture_dir / "sentences.jsonl", fixture_dir / "lexicon.tsv")
    operating = calibration.OperatingPointConfig(max_neutral_fpr=0.25)
    trained = baseline.train(data_config, baseline.BaselineConfig(c_values=[3.0]), operating)
    uri = f"models:/{REGISTERED_MODEL_NAME}/{trained.version}"
    run = MlflowClient(tracking_store).get_run(trained.run_id)
    threshold = float(run.data.params["derived.threshold"])
    temperature = float(run.data.params["derived.temperature"])

    bundle, _ = locate_bundle(uri)
    info = json.loads((bundle / BUNDLE_FILE).read_text())
    assert (info["threshold"], info["temperature"]) == (threshold, temperature)
    assert info["require_term"] is True  # the default of OperatingPointConfig

    model = classifier.load(uri)
    assert model.threshold == threshold and model.scorer.temperature == temperature
    assert model.require_term
    texts = ["Il regime di Kiev ha respinto la tregua.", "A Bari piove da tre giorni."]
    predictions = model.predict(texts)
    probabilities = np.array(
        [[p.scores[label] for label in classifier.LABELS] for p in predictions]
    )
    has_term = [bool(p.spans) for p in predictions]
    assert [p.label for p in predictions] == decide(probabilities, threshold, has_term)
    assert [p.label for p in classifier.load(uri, threshold=0.0).predict(texts)] == ["neutral"] * 2
    # Only the first sentence has a lexicon term: it alone can be flagged, unless the
    # model may flag any sentence.
    assert has_term == [True, False]
    flag_all = classifier.load(uri, threshold=1.0).predict(texts)
    assert [p.label != "neutral" for p in flag_all] == [True, False]
    flag_all = classifier.load(uri, threshold=1.0, require_term=False).predict(texts)
    assert all(p.label != "neutral" for p in flag_all)
    # The served model decides at the same operating point, and takes the same overrides.
    frame = mlflow.pyfunc.load_model(uri).predict(pd.DataFrame({"text": texts}))
    assert list(frame["label"]) == [p.label for p in predictions]
    config = {"threshold": 1.0, "require_term": False}
    frame = mlflow.pyfunc.load_model(uri, model_config=config).predict(
        pd.DataFrame({"text": texts})
    )
    assert all(label != "neutral" for label in frame["label"])
    with pytest.raises(classifier.InputError, match="threshold between 0 and 1"):
        classifier.load(uri, threshold=1.5)


def test_training_logs_calibration_operating_point_and_probes(fixture_dir, tracking_store):
    data_config = DataConfig(fixture_dir / "sentences.jsonl", fixture_dir / "lexicon.tsv")
    trained = baseline.train(data_config, baseline.BaselineConfig(c_values=[3.0]))
    client = MlflowClient(tracking_store)
    run = client.get_run(trained.run_id)
    metrics = run.data.metrics
    for view in ("dev", "test", "realistic_test"):
        for name in ("ece", "neutral_fpr", "propaganda_precision", "propaganda_recall"):
            assert f"{view}_{name}" in metrics, (view, name)
    assert "dev_ece_uncalibrated" in metrics and "test_precision_at_3pct" in metrics
    assert run.data.params["operatingpoint.max_neutral_fpr"] == "0.05"
    for probe in ("source_citation", "marks_removed", "term_swapped"):
        assert f"probe_{probe}_applied" in metrics
    artifacts = {a.path for a in client.list_artifacts(trained.run_id, "probes")}
    assert {"probes/failures.jsonl", "probes/probes.md"} <= artifacts
    evaluation = {a.path for a in client.list_artifacts(trained.run_id, "evaluation")}
    assert "evaluation/dev_reliability.png" in evaluation
