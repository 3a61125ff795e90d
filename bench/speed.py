"""How fast each scoring path is on this machine, measured in one run (`make bench`).

On the same sentences (every sentence of `labels/`) and the same fine-tuned model (the
registered `@bert`), it times: the baseline, the transformers
`pipeline("text-classification")` at its best batch size, and our path in fp32 and bf16.
The default is bf16 where the CPU has it natively and training measured it within 0.01
macro-F1 of fp32, else fp32. Each path runs in a fresh process so that its peak memory
is its own; each is warmed up, then timed twice, and the faster pass counts. It also
times start-up as a user meets it: `classifier score` with the baseline as a cold
process (the first call, which fills the cache, and the next ones), and
`classifier.load` of each family in a fresh process. It prints sentences per second,
the ratio of our default path to the pipeline, the test macro-F1 of each path, peak
memory, and the BERT fine-tune's time per epoch and peak memory from MLflow.

Ratios are the figures that matter: absolute times move with whatever else the machine
is doing. Nothing here asserts a speed; tests never time anything.

    python -m bench.speed [--update-readme] [--sentences N]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import subprocess
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
    from training.data import read_splits

    splits = read_splits()
    texts = list(splits["train"]["text"]) + list(splits["dev"]["text"])
    test_rows = list(range(len(texts), len(texts) + len(splits["test"])))
    texts += list(splits["test"]["text"])
    return texts, test_rows, splits["test"].features["label"].int2str(list(splits["test"]["label"]))


def build_scorer(path: str, bundle: str, batch_size: int):
    """A function texts -> label ids for one path."""
    if path == "baseline":
        from classifier.scoring import BaselineScorer

        scorer = BaselineScorer.load(Path(bundle))
        return lambda texts: scorer.predict_proba(texts).argmax(axis=1)
    if path in ("fp32", "bf16"):
        from classifier.scoring import BertScorer

        scorer = BertScorer(bundle, precision=path)
        return lambda texts: scorer.predict_proba(texts).argmax(axis=1)
    from transformers import pipeline

    from classifier.scoring import LABELS, load_bert

    # The same fine-tuned model, given to the pipeline as an object: its class (mean
    # pooling) is the project's, which the pipeline does not know by name.
    tokenizer, model = load_bert(Path(bundle))
    classify = pipeline("text-classification", model=model.eval(), tokenizer=tokenizer, device=-1)

    def run(texts):
        outputs = classify(texts, batch_size=batch_size, truncation=True)
        return [LABELS.index(output["label"]) for output in outputs]

    return run


def time_load(family: str, queue) -> None:
    """Run in a child process: seconds from nothing imported to `classifier.load(family)`."""
    started = time.perf_counter()
    import classifier

    classifier.load(family)
    queue.put(time.perf_counter() - started)


def load_seconds(family: str) -> float:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=time_load, args=(family, queue))
    child.start()
    seconds = queue.get()
    child.join()
    return seconds


def explain_speed(family: str, texts: list[str], queue) -> None:
    """Run in a child process: sentences per second of `predict(explain=True)`."""
    import classifier

    model = classifier.load(family)
    model.predict(texts[:4], explain=True)
    started = time.perf_counter()
    model.predict(texts, explain=True)
    queue.put(len(texts) / (time.perf_counter() - started))


def in_child(target, *args):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=target, args=(*args, queue))
    child.start()
    result = queue.get()
    child.join()
    return result


def spark_speed(family: str, texts: list[str], master: str = "local[2]") -> tuple[float, float]:
    """(sentences per second, start-up seconds) of `classifier score --spark` on `texts`.

    The start-up (a JVM, Python workers, the model loaded in each) is timed on ten
    sentences and taken off the full run's time.
    """
    import tempfile

    import pandas as pd

    def run(rows: list[str], folder: Path) -> float:
        source, output = folder / f"in-{len(rows)}.parquet", folder / f"out-{len(rows)}.parquet"
        pd.DataFrame({"text": rows}).to_parquet(source)
        command = [sys.executable, "-m", "classifier", "score", "--model", family, "--input",
                   str(source), "--output", str(output), "--spark", master]  # fmt: skip
        started = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        return time.perf_counter() - started

    with tempfile.TemporaryDirectory() as folder:
        startup = run(texts[:10], Path(folder))
        total = run(texts, Path(folder))
    return len(texts) / max(total - startup, 1e-9), startup


def cold_start_seconds(runs: int = 3) -> tuple[float, float]:
    """Wall seconds of `classifier score` with the baseline as a new process: the first
    call (which fills the cache) and the best of the next `runs`."""
    import tempfile

    sentences = ["Il regime di Kiev ha respinto la tregua.", "A Bari piove da tre giorni."]
    command = [sys.executable, "-m", "classifier", "score", "--model", "baseline", *sentences]
    times = []
    with tempfile.TemporaryDirectory() as cache:  # an empty cache: the first call is cold
        env = {**os.environ, "FRAMING_CLASSIFIER_CACHE": cache}
        for _ in range(runs + 1):
            started = time.perf_counter()
            subprocess.run(command, check=True, capture_output=True, env=env)
            times.append(time.perf_counter() - started)
    return times[0], min(times[1:])


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
    return run.data.metrics | {"checkpoint": run.data.params.get("derived.checkpoint", "?")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.speed", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--update-readme", action="store_true", help="write the table into README")
    parser.add_argument(
        "--sentences", type=int, default=0, help="time only the first N sentences (0 = all)"
    )
    parser.add_argument("--no-spark", action="store_true", help="leave out the Spark rows")
    parser.add_argument("--results", type=Path, default=RESULTS, help="where the table is saved")
    args = parser.parse_args(argv)

    import torch

    from classifier.api import locate_bundle
    from classifier.bundle import LABELS, read_bundle
    from classifier.scoring import fast_precision, native_bf16
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
    if args.sentences:
        # Keep the test sentences first, so that the figures stay comparable.
        order = test_rows + [i for i in range(len(texts)) if i not in set(test_rows)]
        keep = order[: args.sentences]
        texts = [texts[i] for i in keep]
        test_gold = [g for i, g in zip(test_rows, test_gold, strict=True) if i in set(keep)]
        test_rows = list(range(len(test_gold)))
    print(f"{len(texts)} sentences; BERT {bert_uri}; torch threads {torch.get_num_threads()}")
    first_call, next_calls = cold_start_seconds()
    loads = {family: load_seconds(family) for family in ("baseline", "bert")}
    explained = {
        family: in_child(explain_speed, family, texts[:count])
        for family, count in (("baseline", 400), ("bert", 40))
    }
    sparked = {}
    if not args.no_spark:
        for family, count in (("baseline", len(texts)), ("bert", min(len(texts), 2000))):
            sparked[family] = spark_speed(family, texts[:count])

    results = {}
    speed, labels, peak = run_in_child("baseline", str(baseline_bundle), texts)
    predicted = [LABELS[labels[i]] for i in test_rows]
    results["baseline (TF-IDF + LR)"] = (
        speed,
        compute_metrics(test_gold, predicted)["macro_f1"],
        peak,
    )
    pipeline_runs = {}
    for size in PIPELINE_BATCH_SIZES:
        pipeline_runs[size] = run_in_child("pipeline", str(bert_bundle), texts, size)
        print(f"  pipeline batch {size:>2}: {pipeline_runs[size][0]:8.1f} sentences/s")
    best_size = max(pipeline_runs, key=lambda size: pipeline_runs[size][0])
    info = read_bundle(bert_bundle)
    checks, default = info.get("macro_f1_change", {}), fast_precision(info)
    runs = [(f"transformers pipeline (batch {best_size})", pipeline_runs[best_size])]
    for precision in ("fp32", "bf16"):
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
        f"BERT fine-tuned here from `{checkpoint_name(str(training['checkpoint']))}` (the "
        "pipeline rows and ours score that same model).",
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
        f"This CPU {'has' if native_bf16() else 'has no'} native bf16; training measured bf16's "
        f"macro-F1 change from fp32 (dev / test) as {measured or 'nothing'}, and bf16 is the "
        "default only where the CPU has it and both are within 0.01.",
        f"Start-up: `classifier score` with the baseline takes {next_calls:.1f} s as a new "
        f"process ({first_call:.1f} s the first time, which fills the cache); "
        f"`classifier.load` in a fresh process takes {loads['baseline']:.1f} s for the "
        f"baseline and {loads['bert']:.1f} s for BERT.",
        "With explanations (`predict(explain=True)`): "
        f"{explained['baseline']:,.0f} sentences/s for the baseline, "
        f"{explained['bert']:,.1f} for BERT (integrated gradients, 16 steps).",
        *(
            [
                "Spark (`classifier score --spark local[2]`, after its start-up): "
                + "; ".join(
                    f"{family} {speed:,.0f} sentences/s (start-up {startup:.0f} s)"
                    for family, (speed, startup) in sparked.items()
                )
                + "; the single-process figures are in the table."
            ]
            if sparked
            else []
        ),
        f"BERT fine-tune: {training.get('seconds_per_epoch', float('nan')):.0f} s per epoch, "
        f"{training.get('epochs_run', float('nan')):.0f} epochs, peak memory "
        f"{training.get('peak_memory_mb', float('nan')):,.0f} MB.",
    ]
    table = "\n".join(lines)
    print("\n" + table)
    args.results.parent.mkdir(parents=True, exist_ok=True)
    args.results.write_text(table + "\n", encoding="utf-8")
    if args.update_readme:
        from training.data import replace_block

        replace_block(README, TABLE_START, TABLE_END, table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
