"""How fast each scoring path is on this machine, measured in one run (`make bench`).

On the same sentences (every sentence of `labels/`) and the same fine-tuned checkpoint
(the best registered BERT), it times: the baseline, the transformers
`pipeline("text-classification")` at its best batch size, and our path in fp32, bf16
and int8. The default is this CPU's native reduced precision (bf16 or int8) where
training measured it within 0.01 macro-F1 of fp32, else fp32. Each path runs in a
fresh process so that its peak memory is its own; each is warmed up, then timed
twice, and the faster pass counts. It prints sentences per second, the
ratio of our default path to the pipeline, the test macro-F1 of each BERT path, peak
memory, and the BERT fine-tune's time per epoch and peak memory from MLflow.

Ratios are the figures that matter: absolute times move with whatever else the machine
is doing. Nothing here asserts a speed; tests never time anything.

    python -m bench.speed [--update-readme]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
RESULTS = ROOT / "bench" / "results" / "latest.md"
TABLE_START = "<!-- bench:start (written by `python -m bench.speed --update-readme`) -->"
TABLE_END = "<!-- bench:end -->"
PIPELINE_BATCH_SIZES = (1, 8, 16, 32, 64)
WARM_UP = 64  # sentences scored before timing, so lazy initialisation is not timed


def sentences() -> tuple[list[str], list[int], list[str]]:
    """Every labelled sentence, the positions of the test ones, and their gold labels."""
    from classifier.scoring import LABELS
    from training.data import read_splits

    splits = read_splits()
    texts = list(splits["train"]["text"]) + list(splits["dev"]["text"])
    test_rows = list(range(len(texts), len(texts) + len(splits["test"])))
    texts += list(splits["test"]["text"])
    return texts, test_rows, [LABELS[i] for i in splits["test"]["label"]]


def build_scorer(path: str, bundle: str, batch_size: int):
    """A function texts -> label ids for one path."""
    if path == "baseline":
        from classifier.scoring import BaselineScorer

        scorer = BaselineScorer.load(Path(bundle))
        return lambda texts: scorer.predict_proba(texts).argmax(axis=1)
    if path in ("fp32", "bf16", "int8"):
        from classifier.scoring import BertScorer

        scorer = BertScorer(bundle, precision=path)
        return lambda texts: scorer.predict_proba(texts).argmax(axis=1)
    from transformers import pipeline

    from classifier.scoring import LABELS

    classify = pipeline("text-classification", model=bundle, device=-1)

    def run(texts):
        outputs = classify(texts, batch_size=batch_size, truncation=True)
        return [LABELS.index(output["label"]) for output in outputs]

    return run


def measure(path: str, bundle: str, batch_size: int, texts: list[str], queue) -> None:
    """Run in a child process: time one path and report (sentences/s, labels, peak MB)."""
    score = build_scorer(path, bundle, batch_size)
    score(texts[:WARM_UP])
    best, labels = float("inf"), None
    for _ in range(2):
        started = time.perf_counter()
        labels = list(score(texts))
        best = min(best, time.perf_counter() - started)
    queue.put((len(texts) / best, [int(label) for label in labels], peak_memory_mb()))


def peak_memory_mb() -> float:
    """This process's own peak resident memory. Not `ru_maxrss`: Linux carries it across
    the exec that starts a spawned child, so every child would report the parent's peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_in_child(path: str, bundle: str, texts: list[str], batch_size: int = 0):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=measure, args=(path, bundle, batch_size, texts, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def machine() -> str:
    """The CPU's model name and core count, as /proc/cpuinfo gives it where there is one."""
    cpuinfo = Path("/proc/cpuinfo")
    names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines()
             if line.startswith("model name")] if cpuinfo.exists() else []  # fmt: skip
    return f"{names[0] if names else platform.machine()} ({os.cpu_count()} cores)"


def checkpoint_name(checkpoint: str) -> str:
    """A hub id as it is; a local directory by its last two parts (`.../minilm/model`)."""
    path = Path(checkpoint)
    return "/".join(path.parts[-2:]) if path.is_absolute() else checkpoint


def training_figures(uri: str) -> dict[str, float]:
    from mlflow.tracking import MlflowClient

    from classifier.store import tracking_uri

    client = MlflowClient(tracking_uri())
    name, version = uri.removeprefix("models:/").split("/")
    run = client.get_run(client.get_model_version(name, version).run_id)
    return run.data.metrics | {"checkpoint": run.data.params.get("finetune.model", "?")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.speed", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--update-readme", action="store_true", help="write the table into README")
    args = parser.parse_args(argv)

    import torch

    from classifier.api import locate_bundle
    from classifier.scoring import LABELS, fast_precision, native_precision, read_bundle_info
    from classifier.store import ModelNotFoundError
    from training.evaluate import compute_metrics

    try:
        bert_bundle, bert_uri = locate_bundle("bert")
        baseline_bundle, _ = locate_bundle("baseline")
    except ModelNotFoundError as error:
        print(
            f"error: {error} (the benchmark needs both families: `make train-offline`)",
            file=sys.stderr,
        )
        return 2
    texts, test_rows, test_gold = sentences()
    print(f"{len(texts)} sentences; BERT {bert_uri}; torch threads {torch.get_num_threads()}")

    results = {}
    speed, _, peak = run_in_child("baseline", str(baseline_bundle), texts)
    results["baseline (TF-IDF + LR)"] = (speed, None, peak)
    pipeline_runs = {}
    for size in PIPELINE_BATCH_SIZES:
        pipeline_runs[size] = run_in_child("pipeline", str(bert_bundle), texts, size)
        print(f"  pipeline batch {size:>2}: {pipeline_runs[size][0]:8.1f} sentences/s")
    best_size = max(pipeline_runs, key=lambda size: pipeline_runs[size][0])
    info = read_bundle_info(bert_bundle)
    checks, default = info.get("macro_f1_change", {}), fast_precision(info)
    runs = [(f"transformers pipeline (batch {best_size})", pipeline_runs[best_size])]
    for precision in ("fp32", "bf16", "int8"):
        name = f"ours, {precision}" + (" (default)" if precision == default else "")
        runs.append((name, run_in_child(precision, str(bert_bundle), texts)))
    for name, (speed, labels, peak) in runs:
        predicted = [LABELS[labels[i]] for i in test_rows]
        results[name] = (speed, compute_metrics(test_gold, predicted)["macro_f1"], peak)

    pipeline_speed = pipeline_runs[best_size][0]
    default_speed, default_f1, _ = results[f"ours, {default} (default)"]
    fp32_f1 = next(f1 for name, (_, f1, _) in results.items() if name.startswith("ours, fp32"))
    measured = "; ".join(
        f"{precision} {change['dev']:+.3f} / {change['test']:+.3f}"
        for precision, change in checks.items()
    )
    training = training_figures(bert_uri)
    lines = [
        f"Measured by `make bench` on {machine()}, "
        f"{torch.get_num_threads()} torch threads, {len(texts)} sentences, "
        f"BERT checkpoint `{checkpoint_name(str(training['checkpoint']))}` fine-tuned here.",
        "",
        "| path | sentences/s | test macro-F1 | peak memory (MB) |",
        "|---|---:|---:|---:|",
    ]
    for name, (speed, f1, peak) in results.items():
        f1_text = f"{f1:.3f}" if f1 is not None else "—"
        lines.append(f"| {name} | {speed:,.0f} | {f1_text} | {peak:,.0f} |")
    lines += [
        "",
        f"Our default path ({default}) is **{default_speed / pipeline_speed:.2f}×** the pipeline "
        f"at its best batch size; its test macro-F1 is {default_f1 - fp32_f1:+.3f} from fp32.",
        f"This CPU's reduced precision is {native_precision()}; training measured the macro-F1 "
        f"change from fp32 (dev / test) as {measured or 'nothing (an older bundle)'}, and the "
        "default is that precision only if both are within 0.01.",
        f"BERT fine-tune: {training.get('seconds_per_epoch', float('nan')):.0f} s per epoch, "
        f"{training.get('epochs_run', float('nan')):.0f} epochs, peak memory "
        f"{training.get('peak_memory_mb', float('nan')):,.0f} MB.",
    ]
    table = "\n".join(lines)
    print("\n" + table)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(table + "\n", encoding="utf-8")
    if args.update_readme:
        readme = README.read_text(encoding="utf-8")
        head, rest = readme.split(TABLE_START, 1)
        _, tail = rest.split(TABLE_END, 1)
        README.write_text(f"{head}{TABLE_START}\n{table}\n{TABLE_END}{tail}", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
