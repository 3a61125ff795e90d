"""Where the project's MLflow runs and models live, and which registered version to use.

The store is `MLFLOW_TRACKING_URI` when it is set, otherwise a sqlite database in the
project's `mlruns/` (MLflow 3 refuses a plain `./mlruns` file store). Training writes to
it; `classifier.load` only reads from it.

Which version is the model is MLflow's own mechanism, registered-model aliases:
`@baseline` and `@bert` name the best version of each family, `@champion` the best of
all (`models:/framing-classifier@champion` is what `make serve` serves). `promote` moves
an alias to a new version when it scores higher on the selection metric, or when the
holder was trained on other data (its labels file's hash differs): a dev score measured
on an older dev set says nothing about today's.

Reading never writes into the store: artifacts of a local store are read in place, and
those of a remote one are downloaded once per model into a cache
(`FRAMING_CLASSIFIER_CACHE`, default `~/.cache/framing-classifier`). Resolving an alias
of a local sqlite store is remembered there too, for as long as the database file is
unchanged, so that a command-line call need not start MLflow at all.

Nothing here trains or scores.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import NamedTuple
from urllib.parse import unquote, urlparse

EXPERIMENT_NAME = "framing-classifier"
REGISTERED_MODEL_NAME = "framing-classifier"
SELECTION_METRIC = "dev_macro_f1"
FAMILY_TAG = "family"
LABELS_TAG = "labels_sha256"
CHAMPION = "champion"
# Remote stores must answer quickly or be reported as unreachable, not retried for minutes.
HTTP_TIMEOUT_SECONDS = "10"
HTTP_MAX_RETRIES = "1"


class ModelNotFoundError(LookupError):
    """No trained model matches what was asked for, or the store cannot be read."""


class Resolved(NamedTuple):
    """A registered version, and where its MLflow model directory can be read."""

    uri: str  # models:/<name>/<version>
    model_uri: str  # the artifact location of the MLflow model (file://, s3://, ...)


def project_root() -> Path:
    """The checkout this package lives in (editable install), else the working directory."""
    root = Path(__file__).resolve().parents[1]
    return root if (root / "pyproject.toml").is_file() else Path.cwd()


def default_store_dir() -> Path:
    return project_root() / "mlruns"


def tracking_uri() -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{default_store_dir() / 'mlflow.db'}"


def cache_dir() -> Path:
    base = (
        os.environ.get("FRAMING_CLASSIFIER_CACHE")
        or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "framing-classifier"
    )
    return Path(base)


def alias_of(family: str | None) -> str:
    return family or CHAMPION


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI, None for any other kind of store."""
    return Path(uri.removeprefix("sqlite:///")) if uri.startswith("sqlite:///") else None


def check_store(uri: str) -> None:
    """Refuse, with one clear message, a store that cannot be what the user meant."""
    scheme = urlparse(uri).scheme
    database = sqlite_path(uri)
    if database is not None:
        if not database.parent.is_dir():
            raise ModelNotFoundError(
                f"The model store {uri} does not exist: no directory {database.parent} "
                "(check MLFLOW_TRACKING_URI, or run `make train`)"
            )
        if database.is_dir():
            raise ModelNotFoundError(f"The model store {uri} is a directory, not a database file")
        return
    if scheme in ("http", "https", "databricks", "postgresql", "mysql", "mssql"):
        return
    raise ModelNotFoundError(
        f"MLFLOW_TRACKING_URI={uri!r} is not a model store this project can read: expected "
        "sqlite:///path/to/mlflow.db or an http(s):// tracking server"
    )


def client():
    """An MlflowClient on the project's store, failing fast on remote stores."""
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", HTTP_TIMEOUT_SECONDS)
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", HTTP_MAX_RETRIES)
    from mlflow.tracking import MlflowClient

    uri = tracking_uri()
    check_store(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def store_error(uri: str, error: Exception) -> ModelNotFoundError:
    message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return ModelNotFoundError(f"Cannot read the model store {uri}: {message}")


def resolve(family: str | None = None) -> Resolved:
    """The version an alias names: `@champion` (no family), `@baseline` or `@bert`."""
    uri = tracking_uri()
    alias = alias_of(family)
    what = f"a trained {family!r} model" if family else "a trained model"
    hint = f"run `make train-{family}`" if family else "run `make train`"
    check_store(uri)
    database = sqlite_path(uri)
    if database is not None and not database.is_file():
        raise ModelNotFoundError(f"There is no {what} yet: the store {uri} is empty; {hint}.")
    remembered = _remembered(uri, alias)
    if remembered:
        return remembered
    from mlflow.exceptions import MlflowException

    try:
        store = client()
        version = store.get_model_version_by_alias(REGISTERED_MODEL_NAME, alias)
        location = store.get_model_version_download_uri(REGISTERED_MODEL_NAME, version.version)
    except MlflowException as error:
        if "not found" in str(error).lower() or "RESOURCE_DOES_NOT_EXIST" in str(error):
            raise ModelNotFoundError(
                f"There is no {what} registered as {REGISTERED_MODEL_NAME}@{alias} in {uri}; "
                f"{hint}."
            ) from None
        raise store_error(uri, error) from None
    except Exception as error:  # sqlite and HTTP faults surface as many types
        raise store_error(uri, error) from None
    resolved = Resolved(f"models:/{REGISTERED_MODEL_NAME}/{version.version}", location)
    _remember(uri, alias, resolved)
    return resolved


def resolve_uri(model_uri: str) -> Resolved:
    """Where a `models:/` or `runs:/` URI's MLflow model can be read."""
    from mlflow.exceptions import MlflowException

    uri = tracking_uri()
    try:
        store = client()
        if model_uri.startswith("models:/"):
            name, _, rest = model_uri.removeprefix("models:/").partition("/")
            if "@" in name:
                name, alias = name.split("@", 1)
                version = store.get_model_version_by_alias(name, alias).version
            else:
                version = rest
            location = store.get_model_version_download_uri(name, version)
            return Resolved(f"models:/{name}/{version}", location)
        return Resolved(model_uri, model_uri)
    except ModelNotFoundError:
        raise
    except MlflowException as error:
        raise ModelNotFoundError(f"Cannot load model {model_uri!r}: {_first_line(error)}") from None
    except Exception as error:
        raise store_error(uri, error) from None


def model_directory(resolved: Resolved) -> Path:
    """A local directory holding the MLflow model: in place if local, else a cached download."""
    location = urlparse(resolved.model_uri)
    if location.scheme in ("file", ""):
        path = Path(unquote(location.path))
        if path.is_dir():
            return path
    target = cache_dir() / "models" / _slug(resolved.model_uri)
    if target.is_dir():
        return target
    import mlflow

    mlflow.set_tracking_uri(tracking_uri())
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".download-") as folder:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=resolved.uri, dst_path=folder)
        except Exception as error:
            raise ModelNotFoundError(
                f"Cannot load model {resolved.uri!r}: {_first_line(error)}"
            ) from None
        try:
            Path(local).rename(target)
        except OSError:
            if not target.is_dir():  # another process may have won the race
                raise
    return target


def promote(version: str, family: str) -> list[str]:
    """Move `@<family>` and `@champion` to `version` where it beats the holder; say what moved.

    A holder trained on another labels file always gives way: its dev score was measured
    on another dev set. Equal scores keep the holder.
    """
    store = client()
    new = store.get_model_version(REGISTERED_MODEL_NAME, version)
    new_run = store.get_run(new.run_id)
    new_score = new_run.data.metrics.get(SELECTION_METRIC)
    messages = []
    for alias in (family, CHAMPION):
        holder = _holder(store, alias)
        if holder is None:
            take, why = True, "no version held it"
        else:
            run = store.get_run(holder.run_id)
            score = run.data.metrics.get(SELECTION_METRIC)
            if run.data.tags.get(LABELS_TAG) != new_run.data.tags.get(LABELS_TAG):
                take, why = True, f"version {holder.version} was trained on other labels"
            elif score is None or (new_score is not None and new_score > score):
                held = "none" if score is None else f"{score:.4f}"
                take, why = True, f"{SELECTION_METRIC} {new_score:.4f} > {held} of {holder.version}"
            else:
                take, why = (
                    False,
                    (
                        f"{SELECTION_METRIC} {new_score:.4f} does not beat {score:.4f} of version "
                        f"{holder.version}, which keeps it"
                    ),
                )
        if take:
            store.set_registered_model_alias(REGISTERED_MODEL_NAME, alias, version)
            messages.append(f"version {version} takes @{alias}: {why}")
        else:
            messages.append(f"version {version} does not take @{alias}: {why}")
    return messages


def _holder(store, alias: str):
    from mlflow.exceptions import MlflowException

    try:
        return store.get_model_version_by_alias(REGISTERED_MODEL_NAME, alias)
    except MlflowException:
        return None


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _slug(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:24]


def _resolutions_file() -> Path:
    return cache_dir() / "resolved.json"


def _stamp(uri: str) -> list[int] | None:
    """What changes whenever a sqlite store is written: its size and modification time."""
    database = sqlite_path(uri)
    if database is None or not database.is_file():
        return None
    stat = database.stat()
    return [stat.st_size, stat.st_mtime_ns]


def _remembered(uri: str, alias: str) -> Resolved | None:
    stamp = _stamp(uri)
    if stamp is None:
        return None
    try:
        entry = json.loads(_resolutions_file().read_text(encoding="utf-8")).get(f"{uri}@{alias}")
    except (OSError, ValueError, AttributeError):
        return None
    if not entry or entry.get("stamp") != stamp:
        return None
    resolved = Resolved(entry["uri"], entry["model_uri"])
    location = urlparse(resolved.model_uri)
    if location.scheme == "file" and not Path(unquote(location.path)).is_dir():
        return None
    return resolved


def _remember(uri: str, alias: str, resolved: Resolved) -> None:
    """Best effort: a read-only or full cache only costs the next call some time."""
    stamp = _stamp(uri)
    if stamp is None:
        return
    path = _resolutions_file()
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        entries = {}
    entries[f"{uri}@{alias}"] = {"stamp": stamp, **resolved._asdict()}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", dir=path.parent, delete=False, suffix=".tmp", encoding="utf-8"
        ) as out:
            json.dump(entries, out)
        os.replace(out.name, path)
    except OSError:
        pass
