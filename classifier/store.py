"""Where the project's MLflow runs and models live, and which registered model is best.

The store is `MLFLOW_TRACKING_URI` when it is set, otherwise a sqlite database in the
project's `mlruns/` (MLflow 3 refuses a plain `./mlruns` file store). Training writes
to it; `classifier.load` reads from it. Nothing here trains or scores.
"""

from __future__ import annotations

import os
from pathlib import Path

EXPERIMENT_NAME = "framing-classifier"
REGISTERED_MODEL_NAME = "framing-classifier"
SELECTION_METRIC = "dev_macro_f1"
FAMILY_TAG = "family"


class ModelNotFoundError(LookupError):
    """No trained model matches what was asked for."""


def project_root() -> Path:
    """The checkout this package lives in (editable install), else the working directory."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def default_store_dir() -> Path:
    return project_root() / "mlruns"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{default_store_dir() / 'mlflow.db'}"


def best_model_uri(family: str | None = None) -> str:
    """The `models:/` URI of the registered version with the highest dev macro-F1."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    what = f"a trained {family!r} model" if family else "a trained model"
    hint = f"run `make train-{family}`" if family else "run `make train`"
    uri = tracking_uri()
    if (
        "MLFLOW_TRACKING_URI" not in os.environ
        and not (default_store_dir() / "mlflow.db").is_file()
    ):
        raise ModelNotFoundError(f"There is no {what} yet: the store {uri} is empty; {hint}.")
    client = MlflowClient(tracking_uri=uri)
    try:
        versions = client.search_model_versions(f"name='{REGISTERED_MODEL_NAME}'")
    except MlflowException as error:
        raise ModelNotFoundError(f"Cannot read the model registry at {uri}: {error}") from error
    candidates = []
    for version in versions:
        run = client.get_run(version.run_id)
        if family and run.data.tags.get(FAMILY_TAG) != family:
            continue
        score = run.data.metrics.get(SELECTION_METRIC)
        if score is not None:
            candidates.append((score, int(version.version)))
    if not candidates:
        raise ModelNotFoundError(
            f"There is no {what} registered as {REGISTERED_MODEL_NAME!r} in {uri}; {hint}."
        )
    _, best_version = max(candidates)
    return f"models:/{REGISTERED_MODEL_NAME}/{best_version}"
