"""The README's results (`training.report`): the seed spread is over one recipe's runs only."""

from __future__ import annotations

from mlflow.tracking import MlflowClient

from classifier.store import REGISTERED_MODEL_NAME
from training import bert, report
from training.data import DataConfig


def test_the_spread_is_over_the_seeds_of_one_recipe(fixture_dir, tiny_bert, tracking_store):
    data_config = DataConfig(fixture_dir / "sentences.jsonl", fixture_dir / "lexicon.tsv")

    def train(seed, learning_rate=1e-3):
        options = bert.FineTuneArguments(
            num_train_epochs=1, per_device_train_batch_size=8, learning_rate=learning_rate,
            seed=seed,
        )  # fmt: skip
        return bert.train(data_config, bert.RecipeConfig(model=str(tiny_bert)), options)

    first, second = train(seed=1), train(seed=2)
    train(seed=3, learning_rate=5e-4)  # another recipe: not part of the spread
    client = MlflowClient(tracking_store)
    similar = report.same_recipe_runs(first.run_id)
    assert sorted(run.info.run_id for run in similar) == sorted([first.run_id, second.run_id])

    dev = [client.get_run(t.run_id).data.metrics["dev_macro_f1"] for t in (first, second)]
    uri = f"models:/{REGISTERED_MODEL_NAME}/{first.version}"
    table = report.spread_table({"bert": (uri, {}, {})})
    row = table.splitlines()[-1]
    assert row.startswith("| bert | 1, 2 | ")
    assert f"{sum(dev) / 2:.3f} ({min(dev):.3f}–{max(dev):.3f})" in row


def test_the_probe_table_is_what_training_logged(use_trained_store, capsys):
    from training.probes import PROBES

    assert report.main([]) == 0
    printed = capsys.readouterr().out
    client = MlflowClient(use_trained_store)
    version = client.get_model_version_by_alias(REGISTERED_MODEL_NAME, "bert")
    metrics = client.get_run(version.run_id).data.metrics
    for probe in PROBES:
        row = next(line for line in printed.splitlines() if line.startswith(f"| {probe.name} |"))
        applied = int(metrics[f"probe_{probe.name}_applied"])
        bert_cell = row.rstrip(" |").rsplit("| ", 1)[1]
        if f"probe_{probe.name}" in metrics:
            assert bert_cell == f"{metrics[f'probe_{probe.name}']:.0%} of {applied}"
        else:
            assert bert_cell.startswith(f"n/a ({applied} <")
