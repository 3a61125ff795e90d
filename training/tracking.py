"""One MLflow run per training, the same contract for every model family.

`training_run` opens the run and logs what describes it before any training: the
whole configuration as params, the data splits as run inputs with their digests, and
tags for the family, the git commit and the labels file's hash. `log_evaluation`
logs the same metric names and artifacts for every family (on `dev`, `test` and the
seed-article part of `test`), and `log_and_register` logs the model bundle once as a
models-from-code pyfunc and registers it under the project's one model name.

An interrupted training (Ctrl-C) ends its run as KILLED and registers nothing.
Deliberately left out: how a family trains or predicts.
"""

from __future__ import annotations

import dataclasses
import hashlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np

from classifier.scoring import (
    BUNDLE_ARTIFACT,
    LABELS,
    PYFUNC_MODEL_FILE,
    probabilities_to_frame,
)
from classifier.store import (
    EXPERIMENT_NAME,
    FAMILY_TAG,
    REGISTERED_MODEL_NAME,
    default_store_dir,
    tracking_uri,
)
from training.data import ConfigError, DataError

ROOT = Path(__file__).resolve().parents[1]
SEED_SUBSET = "test_seeds"


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


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


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
    """Open the family's run with its params, inputs and tags; close it as it ended."""
    import mlflow

    configure_tracking()
    run = mlflow.start_run(run_name=f"{family}-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        mlflow.set_tags(
            {
                FAMILY_TAG: family,
                "git_commit": git_commit(),
                "labels_sha256": file_sha256(labels_path),
            }
        )
        mlflow.log_params(config_params(*configs))
        for split, dataset in splits.items():
            source = mlflow.data.from_huggingface(
                dataset, path=str(labels_path), targets="label", name=f"sentences-{split}"
            )
            mlflow.log_input(source, context=split)
        yield run
    except KeyboardInterrupt:
        mlflow.end_run(status="KILLED")
        raise
    except BaseException:
        mlflow.end_run(status="FAILED")
        raise
    else:
        mlflow.end_run()


def log_evaluation(predict_proba: Callable[[list[str]], np.ndarray], splits) -> dict[str, float]:
    """Score dev and test, log `<split>_<metric>` for dev, test and test_seeds, and artifacts."""
    import mlflow

    from training.evaluate import write_evaluation

    logged = {}
    with tempfile.TemporaryDirectory() as folder:
        folder = Path(folder)
        for split in ("dev", "test"):
            texts, ids = list(splits[split]["text"]), list(splits[split]["id"])
            gold = [LABELS[i] for i in splits[split]["label"]]
            probabilities = predict_proba(texts)
            parts = {split: np.arange(len(gold))}
            if split == "test":
                sources = splits[split]["source"]
                seeds = [i for i, source in enumerate(sources) if source != "authored"]
                if seeds:
                    parts[SEED_SUBSET] = np.array(seeds)
            for name, rows in parts.items():
                metrics = write_evaluation(
                    folder,
                    name,
                    [texts[i] for i in rows],
                    [ids[i] for i in rows],
                    [gold[i] for i in rows],
                    probabilities[rows],
                )
                logged.update({f"{name}_{metric}": value for metric, value in metrics.items()})
        mlflow.log_metrics(logged)
        mlflow.log_artifacts(str(folder), artifact_path="evaluation")
    return logged


def pinned_requirements(*packages: str) -> list[str]:
    """`name==version` of installed packages, local tags such as `+cpu` dropped (not on PyPI)."""
    from importlib.metadata import version

    return [f"{name}=={version(name).split('+')[0]}" for name in packages]


def log_and_register(
    bundle_dir: Path,
    family: str,
    example_texts: list[str],
    requirements: list[str],
    predict_proba: Callable[[list[str]], np.ndarray],
):
    """Log the bundle as the run's one model and register it; return the model version."""
    import mlflow
    import pandas as pd
    from mlflow.models import infer_signature
    from mlflow.tracking import MlflowClient

    examples = pd.DataFrame({"text": example_texts})
    # The signature's output example comes from the scorer already in memory, the one
    # the pyfunc model serves by default; the bundle is not loaded again for it.
    outputs = probabilities_to_frame(predict_proba(example_texts))
    info = mlflow.pyfunc.log_model(
        name="model",
        python_model=str(PYFUNC_MODEL_FILE),
        artifacts={BUNDLE_ARTIFACT: str(bundle_dir)},
        signature=infer_signature(examples, outputs),
        input_example=examples,
        pip_requirements=requirements,
        registered_model_name=REGISTERED_MODEL_NAME,
    )
    version = info.registered_model_version
    MlflowClient().set_model_version_tag(REGISTERED_MODEL_NAME, str(version), FAMILY_TAG, family)
    return version


def run_command(train: Callable, config_types: list[type], prog: str, argv, user_errors=()) -> int:
    """The command line of a training module: options from its config dataclasses, then train.

    A user mistake (a bad option, broken data, an unusable checkpoint) prints one line and
    exits 2; Ctrl-C exits 130 after `training_run` has marked the run KILLED.
    """
    from transformers import HfArgumentParser

    parser = HfArgumentParser(config_types, prog=prog)
    try:
        train(*parser.parse_args_into_dataclasses(args=argv))
    except (ConfigError, DataError, *user_errors) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the run is marked KILLED and nothing was registered", file=sys.stderr)
        return 130
    return 0
