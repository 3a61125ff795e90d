"""One MLflow run per training, the same contract for every model family.

`training_run` opens the run and logs what describes it before any training: the
whole configuration as params, the data splits as run inputs with their digests, and
tags for the family, the git commit and the labels file's hash.
`evaluate_at_operating_point` calibrates a trained scorer and chooses its threshold on
dev (`training.calibration`), then logs the same metric names and artifacts for every
family: `<view>_<metric>` for each evaluation view (`dev`, `test`, `test_seeds`,
`realistic_dev`, `realistic_test`) and the behavioural probes (`training.probes`).
`log_and_register` logs the model bundle once as a models-from-code pyfunc, registers
it under the project's one model name and moves the aliases it earns
(`classifier.store.promote`).

An interrupted training (Ctrl-C, SIGTERM) ends its run as KILLED and registers nothing.
Deliberately left out: how a family trains or predicts.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from classifier.bundle import BUNDLE_ARTIFACT, LEXICON_FILE, file_sha256
from classifier.lexicon import Lexicon
from classifier.scoring import PYFUNC_MODEL_FILE, pyfunc_frame
from classifier.store import (
    EXPERIMENT_NAME,
    FAMILY_TAG,
    LABELS_TAG,
    REGISTERED_MODEL_NAME,
    default_store_dir,
    promote,
    tracking_uri,
)
from training.data import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
log = logging.getLogger(__name__)


class TrainedModel(NamedTuple):
    """What a training returns: the registered version and the model still in memory."""

    version: str
    run_id: str
    predict_proba: Callable[[list[str]], np.ndarray]


def configure_tracking() -> str:
    """Point MLflow at the project's store and experiment; return the tracking URI."""
    import mlflow

    uri = tracking_uri()
    if uri.startswith("sqlite:///") and uri.endswith(str(default_store_dir() / "mlflow.db")):
        default_store_dir().mkdir(parents=True, exist_ok=True)
    mlflow.set_tracking_uri(uri)
    if mlflow.get_experiment_by_name(EXPERIMENT_NAME) is None:
        # Keep artifacts beside the database, under mlruns/, not in the working directory.
        location = (Path(uri.removeprefix("sqlite:///")).parent / "artifacts").resolve().as_uri()
        mlflow.create_experiment(
            EXPERIMENT_NAME, artifact_location=location if uri.startswith("sqlite:") else None
        )
    mlflow.set_experiment(EXPERIMENT_NAME)
    return uri


def config_params(*configs) -> dict[str, str]:
    """Every field of every config dataclass, as `<config>.<field>` params."""
    params = {}
    for config in configs:
        prefix = type(config).__name__.removesuffix("Config").lower() or "config"
        for field in dataclasses.fields(config):
            params[f"{prefix}.{field.name}"] = str(getattr(config, field.name))
    return params


def peak_memory_mb() -> float:
    """The process's peak resident memory so far (Linux reports kilobytes)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def git_commit() -> str:
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}-dirty" if dirty else commit


@contextmanager
def training_run(family: str, configs: list, splits, labels_path: Path) -> Iterator:
    """Open the family's run with its params, inputs and tags; close it as it ended.

    Ctrl-C and SIGTERM (a CI timeout, `kill`, a closed terminal) end it as KILLED.
    """
    import mlflow

    configure_tracking()
    run = mlflow.start_run(run_name=f"{family}-{time.strftime('%Y%m%d-%H%M%S')}")
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        mlflow.set_tags(
            {
                FAMILY_TAG: family,
                "git_commit": git_commit(),
                LABELS_TAG: file_sha256(labels_path),
            }
        )
        mlflow.log_params(config_params(*configs))
        for split, dataset in splits.items():
            source = mlflow.data.from_huggingface(
                dataset, path=str(labels_path), targets="label", name=f"sentences-{split}"
            )
            mlflow.log_input(source, context=split)
        yield run
    except (KeyboardInterrupt, Terminated):
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run()
    finally:
        signal.signal(signal.SIGTERM, previous)


class Terminated(BaseException):
    """The process received SIGTERM; raised where it was, so every `finally` runs."""


def _raise_terminated(signum, frame):
    raise Terminated


def evaluation_views(splits) -> dict[str, tuple[str, list[int]]]:
    """The named subsets every run is evaluated on: view name -> (split, row indices).

    `dev` and `test` whole; `test_seeds`, the real seed articles; `realistic_dev` and
    `realistic_test`, the realistic layer's documents on their own.
    """
    views = {}
    for split in ("dev", "test"):
        rows = splits[split]
        views[split] = (split, list(range(len(rows))))
        layers = rows.features["layer"].int2str(list(rows["layer"]))
        for layer, name in (("realistic", f"realistic_{split}"), ("seed", f"{split}_seeds")):
            views[name] = (split, [i for i, found in enumerate(layers) if found == layer])
    return {name: view for name, view in views.items() if view[1]}


def log_evaluation(
    predict_proba: Callable[[list[str]], np.ndarray],
    splits,
    threshold: float | None = None,
    has_term: Callable[[str], bool] | None = None,
) -> dict[str, float]:
    """Score dev and test at the operating point; log `<view>_<metric>` for every view.

    `has_term`, where the operating point requires a lexicon term, says whether a text has one.
    """
    import mlflow

    from training.evaluate import write_evaluation

    logged = {}
    probabilities = {split: predict_proba(list(splits[split]["text"])) for split in ("dev", "test")}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for name, (split, rows) in evaluation_views(splits).items():
            data = splits[split]
            texts, ids = list(data["text"]), list(data["id"])
            gold = data.features["label"].int2str(list(data["label"]))
            view_texts = [texts[i] for i in rows]
            metrics = write_evaluation(
                folder,
                name,
                view_texts,
                [ids[i] for i in rows],
                [gold[i] for i in rows],
                probabilities[split][rows],
                threshold,
                [has_term(text) for text in view_texts] if has_term else None,
            )
            logged.update({f"{name}_{metric}": value for metric, value in metrics.items()})
        mlflow.log_metrics(logged)
        mlflow.log_artifacts(str(folder), artifact_path="evaluation")
    return logged


def evaluate_at_operating_point(scorer, splits, config, lexicon_path: Path) -> tuple:
    """Calibrate `scorer` and choose its threshold on dev, then log every evaluation.

    Returns the operating point (set on `scorer` too) and the logged metrics: each view's
    figures at the operating point, the ECE before calibration, and the probes.
    """
    import mlflow

    from classifier.scoring import decide
    from training.calibration import fit_operating_point
    from training.evaluate import expected_calibration_error
    from training.probes import held_out_rows, log_probes, run_probes

    uncalibrated = {
        f"{split}_ece_uncalibrated": expected_calibration_error(
            scorer.predict_proba(list(splits[split]["text"])),
            splits[split].features["label"].int2str(list(splits[split]["label"])),
        )
        for split in ("dev", "test")
    }
    lexicon = Lexicon.read(lexicon_path)
    point = fit_operating_point(scorer, splits["dev"], config, lexicon)
    mlflow.log_params(
        {"derived.temperature": point.temperature, "derived.threshold": point.threshold}
    )
    has_term = (lambda text: bool(lexicon.find(text))) if point.require_term else None
    metrics = {
        **uncalibrated,
        **log_evaluation(scorer.predict_proba, splits, point.threshold, has_term),
    }
    mlflow.log_metrics(uncalibrated)
    results = run_probes(
        lambda texts: decide(
            scorer.predict_proba(texts),
            point.threshold,
            [has_term(text) for text in texts] if has_term else None,
        ),
        held_out_rows(splits),
        lexicon,
    )
    metrics.update(log_probes(results))
    return point, metrics


def pinned_requirements(*packages: str) -> list[str]:
    """`name==version` of installed packages, local tags such as `+cpu` dropped (not on PyPI)."""
    from importlib.metadata import version

    return [f"{name}=={version(name).split('+')[0]}" for name in packages]


def log_and_register(
    bundle_dir: Path,
    family: str,
    example_texts: list[str],
    requirements: list[str],
    scorer,
):
    """Log the bundle as the run's one model and register it; return the model version."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    examples = pd.DataFrame({"text": example_texts})
    # The signature's output example comes from the scorer already in memory, the one
    # the pyfunc model serves by default; the bundle is not loaded again for it.
    lexicon = Lexicon.read(bundle_dir / LEXICON_FILE)
    outputs = pyfunc_frame(scorer, lexicon, example_texts, scorer.threshold, scorer.require_term)
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(PYFUNC_MODEL_FILE),
        artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
        signature=infer_signature(examples, outputs),
        input_example=examples,
        # MLflow lets load_model / spark_udf override only the keys declared here (fast=False:
        # fp32 BERT; threshold, require_term: another operating point; None: the bundle's).
        model_config={"fast": True, "threshold": None, "require_term": None},
        pip_requirements=requirements,
        registered_model_name=REGISTERED_MODEL_NAME,
    )
    version = info.registered_model_version
    MlflowClient().set_model_version_tag(REGISTERED_MODEL_NAME, str(version), FAMILY_TAG, family)
    for message in promote(str(version), family):
        log.info(message)
    return version


def run_command(train: Callable, config_types: list[type], prog: str, argv, user_errors=()) -> int:
    """The command line of a training module: options from its config dataclasses, then train.

    A user mistake (a bad option, broken data, an unusable checkpoint) prints one line and
    exits 2; Ctrl-C exits 130 and SIGTERM 143, after `training_run` has marked the run KILLED.
    """
    from transformers import HfArgumentParser

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = HfArgumentParser(config_types, prog=prog)
    try:
        train(*parser.parse_args_into_dataclasses(args=argv))
    except (ConfigError, DataError, *user_errors) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, Terminated) as stop:
        print("interrupted: the run is marked KILLED and nothing was registered", file=sys.stderr)
        return 143 if isinstance(stop, Terminated) else 130
    return 0
