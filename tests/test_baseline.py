"""The baseline trains on the fixture into a private store, logs the run contract, reloads."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from classifier.scoring import LABELS
from classifier.store import FAMILY_TAG, REGISTERED_MODEL_NAME
from training import baseline
from training.data import ConfigError, DataConfig

SPLIT_METRICS = ("accuracy", "macro_f1", "propaganda_f1", "recall_quoted", "f1_adopted")


def train_fixture(fixture_dir, **options):
    data_config = DataConfig(fixture_dir / "sentences.jsonl", fixture_dir / "lexicon.tsv")
    return baseline.train(data_config, baseline.BaselineConfig(**options))


def test_training_logs_the_run_contract(fixture_dir, tracking_store):
    trained = train_fixture(fixture_dir, c_values=[1.0, 10.0])
    client = MlflowClient(tracking_store)
    run = client.get_run(trained.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[FAMILY_TAG] == "baseline"
    assert run.data.tags["labels_sha256"] and run.data.tags["git_commit"]
    assert run.data.params["baseline.c_values"] == "[1.0, 10.0]"
    assert run.data.params["data.labels"].endswith("sentences.jsonl")
    for view in ("dev", "test", "test_seeds", "realistic_dev", "realistic_test"):
        names = ("accuracy", "macro_f1", "propaganda_f1", "neutral_fpr")
        assert {f"{view}_{name}" for name in names} <= set(run.data.metrics)
    for split in ("dev", "test"):
        assert {f"{split}_{name}" for name in SPLIT_METRICS} <= set(run.data.metrics)
    inputs = {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs}
    assert set(inputs) == {"train", "dev", "test"} and all(d.digest for d in inputs.values())
    artifacts = {a.path for a in client.list_artifacts(trained.run_id, "evaluation")}
    for name in (
        "test_confusion_matrix.png",
        "test_classification_report.txt",
        "test_misclassified.jsonl",
        "dev_confusion_matrix.png",
    ):
        assert f"evaluation/{name}" in artifacts
    versions = client.search_model_versions(f"name='{REGISTERED_MODEL_NAME}'")
    assert [(v.version, v.run_id, v.tags[FAMILY_TAG]) for v in versions] == [
        (trained.version, trained.run_id, "baseline")
    ]


def test_logged_model_predicts_as_in_memory(fixture_dir, tracking_store):
    trained = train_fixture(fixture_dir, c_values=[3.0])
    texts = ["Il regime di Kiev ha respinto la tregua.", "A Bari piove da tre giorni."]
    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL_NAME}/{trained.version}")
    output = model.predict(pd.DataFrame({"text": texts}))
    assert list(output.columns) == ["label", *LABELS, "spans"]
    expected = trained.predict_proba(texts)
    np.testing.assert_allclose(output[list(LABELS)].to_numpy(), expected, rtol=1e-9)
    assert list(output["label"]) == [LABELS[i] for i in expected.argmax(axis=1)]
    assert model.metadata.signature.inputs.input_names() == ["text"]


def test_the_model_is_stored_without_pickle(fixture_dir, tracking_store, tmp_path):
    trained = train_fixture(fixture_dir, c_values=[3.0])
    local = mlflow.artifacts.download_artifacts(
        f"models:/{REGISTERED_MODEL_NAME}/{trained.version}", dst_path=str(tmp_path)
    )
    files = {p.name for p in __import__("pathlib").Path(local).rglob("*") if p.is_file()}
    assert "pipeline.skops" in files and "mlflow_model.py" in files
    assert not {name for name in files if name.endswith((".pkl", ".pickle", ".bin"))}


@pytest.mark.parametrize(
    "options, message",
    [
        ({"c_values": []}, "--c_values: expected positive numbers"),
        ({"c_values": [1.0, -2.0]}, "--c_values: expected positive numbers"),
        ({"char_min_ngram": 6, "char_max_ngram": 3}, "expected 1 <= min <= max"),
    ],
)
def test_bad_configuration_gives_a_clear_error(options, message):
    with pytest.raises(ConfigError, match=message):
        baseline.BaselineConfig(**options)


def test_command_line_reports_bad_options_without_traceback(fixture_dir, capsys):
    status = baseline.main(["--labels", str(fixture_dir / "missing.jsonl")])
    assert status == 2
    err = capsys.readouterr().err
    assert "--labels: expected an existing file" in err and "Traceback" not in err


def test_a_malformed_lexicon_is_one_line_before_training(fixture_dir, capsys):
    lexicon = fixture_dir / "lexicon.tsv"
    lexicon.write_text("term\tregime\n", encoding="utf-8")
    status = baseline.main(
        ["--labels", str(fixture_dir / "sentences.jsonl"), "--lexicon", str(lexicon)]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "--lexicon:" in err and "line 1: expected the header" in err and "Traceback" not in err


def test_interrupted_training_is_killed_and_registers_nothing(
    fixture_dir, tracking_store, monkeypatch
):
    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(baseline, "evaluate_at_operating_point", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_fixture(fixture_dir, c_values=[1.0])
    client = MlflowClient(tracking_store)
    runs = client.search_runs([client.get_experiment_by_name("framing-classifier").experiment_id])
    assert [run.info.status for run in runs] == ["KILLED"]
    assert client.search_model_versions(f"name='{REGISTERED_MODEL_NAME}'") == []
