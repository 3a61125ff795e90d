"""The model bundle: the one module that knows its files, writes them and reads them.

A bundle is the directory that training writes and MLflow stores among the model's
artifacts (under `BUNDLE_ARTIFACT`). It holds

- `classifier.json`: the family, the labels, the operating point (`temperature`,
  `threshold`), what training measured (`macro_f1_change` of reduced precision, ...),
  and `files`, the sha256 of every other file, recorded when training wrote them;
- `lexicon.tsv`, the lexicon the model was trained with;
- the weights: `pipeline.skops` for the baseline; for BERT a Hugging Face model
  directory (`config.json`, `model.safetensors`, the tokenizer files).

`write_bundle` writes `classifier.json` last, once the rest is in place. `read_bundle`
checks, before anything is loaded, that the file parses, that every file the family
needs is there and that every file still has the hash training recorded; any failure is
a `BundleError` that names the file. So a truncated, edited or half-copied bundle never
scores.

Deliberately left out: loading the weights (`classifier.scoring`) and finding a bundle
in the model store (`classifier.api`).
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

LABELS = ("neutral", "quoted", "adopted")
FAMILIES = ("baseline", "bert")
BUNDLE_FILE = "classifier.json"
LEXICON_FILE = "lexicon.tsv"
PIPELINE_FILE = "pipeline.skops"
BUNDLE_ARTIFACT = "bundle"  # the name of the bundle among the MLflow model's artifacts
# What each family cannot score without. A BERT bundle without tokenizer.json would load
# (transformers rebuilds a tokenizer of five tokens from its config) and score garbage.
REQUIRED_FILES = {
    "baseline": (LEXICON_FILE, PIPELINE_FILE),
    "bert": (LEXICON_FILE, "config.json", "model.safetensors", "tokenizer.json",
             "tokenizer_config.json"),
}  # fmt: skip
HASH_CHUNK = 1 << 20


class BundleError(RuntimeError):
    """A model bundle is missing, incomplete, altered or of an unknown family."""


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        while chunk := file.read(HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_bundle(bundle_dir: Path, family: str, lexicon_path: Path, **info) -> None:
    """Finish a bundle whose weights are in place: add the lexicon, then `classifier.json`."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    bundle_dir = Path(bundle_dir)
    shutil.copy(lexicon_path, bundle_dir / LEXICON_FILE)
    missing = [name for name in REQUIRED_FILES[family] if not (bundle_dir / name).is_file()]
    if missing:
        raise BundleError(f"{bundle_dir}: a {family} bundle needs {missing} before it is written")
    files = {
        path.relative_to(bundle_dir).as_posix(): file_sha256(path)
        for path in sorted(bundle_dir.rglob("*"))
        if path.is_file() and path.name != BUNDLE_FILE
    }
    content = {"family": family, "labels": list(LABELS), **info, "files": files}
    (bundle_dir / BUNDLE_FILE).write_text(json.dumps(content, indent=2) + "\n", encoding="utf-8")


def read_bundle(bundle_dir: Path) -> dict:
    """`classifier.json` of a bundle whose files are all present and unchanged."""
    bundle_dir = Path(bundle_dir)
    path = bundle_dir / BUNDLE_FILE
    if not path.is_file():
        raise BundleError(f"{bundle_dir} is not a model bundle: it has no {BUNDLE_FILE}")
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleError(f"{path}: expected a JSON object, cannot read it ({error})") from None
    if not isinstance(info, dict):
        raise BundleError(f"{path}: expected a JSON object, found {type(info).__name__}")
    if info.get("family") not in FAMILIES:
        raise BundleError(f"{path}: expected family in {FAMILIES}, found {info.get('family')!r}")
    if info.get("labels") != list(LABELS):
        raise BundleError(f"{path}: expected labels {list(LABELS)}, found {info.get('labels')}")
    files = info.get("files")
    if not isinstance(files, dict) or not files:
        raise BundleError(
            f"{path}: expected the sha256 of the bundle's files, found none; the model was "
            "saved by an older version of this project: retrain it with `make train`"
        )
    for name in REQUIRED_FILES[info["family"]]:
        if name not in files:
            raise BundleError(f"{path}: expected {name} among the bundle's files, found none")
    for name, recorded in files.items():
        file = bundle_dir / name
        if not file.is_file():
            raise BundleError(f"{bundle_dir}: expected the file {name}, found none")
        if file_sha256(file) != recorded:
            raise BundleError(
                f"{file}: expected the sha256 recorded at training time, found another: "
                "the file was altered or truncated after training"
            )
    return info
