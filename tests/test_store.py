"""The model store: aliases move to better versions, and reading never writes into it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import classifier
from classifier import store
from classifier.store import REGISTERED_MODEL_NAME


def register(client: MlflowClient, family: str, score: float, labels: str = "a") -> str:
    """A registered version whose run scored `score` on dev, trained on labels `labels`."""
    experiment = client.get_experiment_by_name("aliases") or client.get_experiment(
        client.create_experiment("aliases")
    )
    run = client.create_run(experiment.experiment_id)
    client.log_metric(run.info.run_id, store.SELECTION_METRIC, score)
    client.set_tag(run.info.run_id, store.LABELS_TAG, labels)
    client.set_terminated(run.info.run_id)
    if not client.search_registered_models(f"name='{REGISTERED_MODEL_NAME}'"):
        client.create_registered_model(REGISTERED_MODEL_NAME)
    version = client.create_model_version(
        REGISTERED_MODEL_NAME, source="file:///nowhere", run_id=run.info.run_id
    )
    return version.version


def holder(client: MlflowClient, alias: str) -> str:
    return client.get_model_version_by_alias(REGISTERED_MODEL_NAME, alias).version


def test_aliases_go_to_the_best_version_of_the_current_data(tracking_store):
    client = MlflowClient(tracking_store)
    first = register(client, "baseline", 0.70)
    assert store.promote(first, "baseline") == [
        f"version {first} takes @baseline: no version held it",
        f"version {first} takes @champion: no version held it",
    ]
    better_bert = register(client, "bert", 0.75)
    messages = store.promote(better_bert, "bert")
    assert holder(client, "bert") == holder(client, "champion") == better_bert
    assert "takes @champion: dev_macro_f1 0.7500 > 0.7000" in messages[1]

    worse = register(client, "baseline", 0.65)
    messages = store.promote(worse, "baseline")
    assert holder(client, "baseline") == first and holder(client, "champion") == better_bert
    assert messages[0] == (
        f"version {worse} does not take @baseline: dev_macro_f1 0.6500 does not beat 0.7000 "
        f"of version {first}, which keeps it"
    )
    # Trained on another labels file: its lower score is no reason to keep the old holder.
    retrained = register(client, "baseline", 0.60, labels="b")
    store.promote(retrained, "baseline")
    assert holder(client, "baseline") == holder(client, "champion") == retrained


def test_load_resolves_the_aliases(use_trained_store):
    client = MlflowClient(use_trained_store)
    for family in ("baseline", "bert"):
        version = holder(client, family)
        assert classifier.load(family).source == f"models:/{REGISTERED_MODEL_NAME}/{version}"
    champion = holder(client, "champion")
    assert classifier.load().source == f"models:/{REGISTERED_MODEL_NAME}/{champion}"
    by_alias = classifier.load(f"models:/{REGISTERED_MODEL_NAME}@champion")
    assert by_alias.family == classifier.load().family


def tree_digest(folder: Path) -> dict[str, str]:
    return {
        str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_loading_writes_nothing_into_the_store(use_trained_store, tmp_path, monkeypatch):
    monkeypatch.setenv("FRAMING_CLASSIFIER_CACHE", str(tmp_path / "cache"))
    folder = Path(use_trained_store.removeprefix("sqlite:///")).parent
    before = tree_digest(folder)
    for family in ("baseline", "bert"):
        classifier.load(family).predict(["Il regime di Kiev ha respinto la tregua."])
    classifier.load(f"models:/{REGISTERED_MODEL_NAME}/1")
    assert tree_digest(folder) == before


def test_a_second_load_needs_no_registry_query(use_trained_store, tmp_path, monkeypatch):
    monkeypatch.setenv("FRAMING_CLASSIFIER_CACHE", str(tmp_path / "cache"))
    first = store.resolve("baseline")

    def refuse():
        raise AssertionError("the registry was queried although the store did not change")

    monkeypatch.setattr(store, "client", refuse)
    assert store.resolve("baseline") == first


def test_a_store_that_does_not_exist_is_refused_not_created(tmp_path, monkeypatch):
    missing = tmp_path / "no-such-dir" / "mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{missing}")
    with pytest.raises(classifier.ModelNotFoundError, match="does not exist"):
        classifier.load()
    assert not missing.parent.exists()


@pytest.mark.parametrize(
    "uri, message",
    [
        ("bogus://x", "is not a model store this project can read"),
        ("/plain/path/mlflow.db", "is not a model store this project can read"),
    ],
)
def test_unusable_store_uris_are_one_clear_error(monkeypatch, uri, message):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    with pytest.raises(classifier.ModelNotFoundError, match=message):
        classifier.load("baseline")


def test_a_file_that_is_not_a_database_is_reported_as_such(tmp_path, monkeypatch):
    database = tmp_path / "mlflow.db"
    database.write_text("not a database")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    monkeypatch.setenv("FRAMING_CLASSIFIER_CACHE", str(tmp_path / "cache"))
    with pytest.raises(classifier.ModelNotFoundError, match="Cannot read the model store"):
        classifier.load("baseline")


def test_an_unreachable_tracking_server_is_one_error_fast(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(classifier.ModelNotFoundError, match="Cannot read the model store http"):
        classifier.load("baseline")


def test_a_locked_database_is_one_error(use_trained_store, tmp_path, monkeypatch):
    import shutil
    import sqlite3

    database = tmp_path / "copy" / "mlflow.db"
    database.parent.mkdir()
    shutil.copy(use_trained_store.removeprefix("sqlite:///"), database)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{database}")
    lock = sqlite3.connect(database)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(classifier.ModelNotFoundError, match="Cannot read the model store"):
            store.resolve("baseline")
    finally:
        lock.rollback()
        lock.close()
