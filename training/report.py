"""The figures of the registered models, side by side, as the README shows them.

    python -m training.report [--update-readme]

For `@baseline` and `@bert` it reads the metrics their training runs logged (macro-F1,
neutral false-positive rate, propaganda recall, precision at a 3% prevalence and ECE,
on `test`, the realistic layer's `test` and the seed articles) and the behavioural
probes' pass rates (`training.probes`), then prints one Markdown table of each, and with
`--update-readme` writes them between the README's `results` markers.

Deliberately left out: training, and any figure not logged by training.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START = "<!-- results:start (written by `python -m training.report --update-readme`) -->"
END = "<!-- results:end -->"
VIEWS = (("test", "test"), ("realistic_test", "realistic test"), ("test_seeds", "seed articles"))
COLUMNS = (
    ("macro_f1", "macro-F1"),
    ("neutral_fpr", "neutral FPR"),
    ("propaganda_recall", "propaganda recall"),
    ("precision_at_3pct", "precision at 3% prevalence"),
    ("ece", "ECE"),
)
FAMILIES = ("baseline", "bert")
# Params that may differ between runs of one recipe: the seed, where or how fast it ran,
# and what training derived from its own model (the calibration and the threshold).
NOT_RECIPE = {
    "seed", "data_seed", "output_dir", "logging_dir", "run_name", "recipe.num_threads",
    "derived.temperature", "derived.threshold",
}  # fmt: skip
SPREAD_COLUMNS = (
    ("dev_macro_f1", "dev macro-F1"),
    ("test_macro_f1", "test macro-F1"),
    ("test_neutral_fpr", "test neutral FPR"),
    ("realistic_test_macro_f1", "realistic test macro-F1"),
    ("test_seeds_macro_f1", "seed articles macro-F1"),
)


def run_metrics(uri: str) -> tuple[dict[str, float], dict[str, str]]:
    """The metrics and params of the training run behind `models:/<name>/<version>`."""
    from classifier.store import client

    name, version = uri.removeprefix("models:/").split("/")
    store = client()
    run = store.get_run(store.get_model_version(name, version).run_id)
    return run.data.metrics, run.data.params


def figures_table(runs: dict[str, tuple[str, dict, dict]]) -> str:
    lines = [
        "| model | evaluated on | " + " | ".join(title for _, title in COLUMNS) + " |",
        "|---|---|" + "---:|" * len(COLUMNS),
    ]
    for family, (_uri, metrics, params) in runs.items():
        checkpoint = params.get("derived.checkpoint")
        name = f"{family} (`{Path(checkpoint).name}`)" if checkpoint else family
        for view, title in VIEWS:
            cells = [
                f"{metrics[f'{view}_{metric}']:.3f}" if f"{view}_{metric}" in metrics else "—"
                for metric, _ in COLUMNS
            ]
            lines.append(f"| {name} | {title} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def same_recipe_runs(run_id: str) -> list:
    """The finished runs with the run's family, labels file and params, but for the seed."""
    from classifier.store import FAMILY_TAG, LABELS_TAG, client

    store = client()
    reference = store.get_run(run_id)
    recipe = {k: v for k, v in reference.data.params.items() if k not in NOT_RECIPE}
    tags = reference.data.tags
    candidates = store.search_runs(
        [reference.info.experiment_id],
        f"tags.{FAMILY_TAG} = '{tags[FAMILY_TAG]}' and tags.{LABELS_TAG} = '{tags[LABELS_TAG]}'"
        " and attributes.status = 'FINISHED'",
    )
    return [
        run
        for run in candidates
        if {k: v for k, v in run.data.params.items() if k not in NOT_RECIPE} == recipe
    ]


def spread_table(runs: dict[str, tuple[str, dict, dict]]) -> str:
    """Mean, and lowest to highest, over the runs of each registered model's recipe."""
    from classifier.store import client

    lines = [
        "| model | seeds | " + " | ".join(title for _, title in SPREAD_COLUMNS) + " |",
        "|---|---|" + "---:|" * len(SPREAD_COLUMNS),
    ]
    for family, (uri, *_) in runs.items():
        name, version = uri.removeprefix("models:/").split("/")
        similar = same_recipe_runs(client().get_model_version(name, version).run_id)
        seeds = ", ".join(sorted({run.data.params.get("seed", "—") for run in similar}))
        cells = []
        for metric, _ in SPREAD_COLUMNS:
            values = [run.data.metrics[metric] for run in similar if metric in run.data.metrics]
            cells.append(
                f"{sum(values) / len(values):.3f} ({min(values):.3f}–{max(values):.3f})"
                if values else "—"
            )  # fmt: skip
        lines.append(f"| {family} | {seeds} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.report", description=__doc__)
    parser.add_argument("--update-readme", action="store_true", help="write into README.md")
    args = parser.parse_args(argv)

    import classifier
    from training.probes import format_table, logged_probes

    runs, probes = {}, {}
    for family in FAMILIES:
        try:
            model = classifier.load(family)
        except classifier.ModelNotFoundError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        runs[family] = (model.source, *run_metrics(model.source))
        probes[family] = logged_probes(runs[family][1])
    versions = ", ".join(
        f"{family} {uri.rsplit('/', 1)[1]}" for family, (uri, _, _) in runs.items()
    )
    text = "\n".join(
        [
            f"Registered versions: {versions}. Labels are decided at each model's operating "
            "point; precision at 3% prevalence is computed from recall and the neutral "
            "false-positive rate, not measured.",
            "",
            figures_table(runs),
            "",
            "Over every finished training of the same recipe on the same labels, differing "
            "only in seed: mean (lowest–highest). The baseline's solver is deterministic.",
            "",
            spread_table(runs),
            "",
            "Behavioural probes (pass rate on the rewritten dev and test sentences the model "
            "labels correctly as they are; `make probes`):",
            "",
            format_table(probes),
        ]
    )
    print(text)
    if args.update_readme:
        from training.data import replace_block

        replace_block(README, START, END, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
