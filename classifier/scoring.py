"""Turn sentences into label probabilities with a trained model bundle.

A *bundle* is the directory that training writes and MLflow stores as the model's
artifact. It holds `classifier.json` (which family, which labels), the project's
`lexicon.tsv`, and the weights: `pipeline.skops` for the baseline, a Hugging Face
model directory for BERT. Both scorers answer `predict_proba(texts)` with one row
per text and one column per label, in `LABELS` order.

The BERT scorer is the fast CPU path: it tokenizes once, sorts by token length,
pads each batch only to its own longest sentence and runs under `torch.inference_mode`.
By default it also computes in reduced precision: bf16 where the CPU does bf16
natively (AVX512-BF16 or AMX), otherwise int8 dynamically quantised linear layers
with per-channel weight scales; but only if training measured that precision within
`PRECISION_TOLERANCE` of fp32's macro-F1 on dev and test (`macro_f1_change` in the
bundle's `classifier.json`); otherwise, and with `fast=False`, fp32.

Deliberately left out: input validation and spans (see `classifier.api`), and any
training code (see `training/`).
"""

from __future__ import annotations

import json
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

LABELS = ("neutral", "quoted", "adopted")
FAMILIES = ("baseline", "bert")
PRECISIONS = ("fp32", "bf16", "int8")
BUNDLE_FILE = "classifier.json"
LEXICON_FILE = "lexicon.tsv"
PIPELINE_FILE = "pipeline.skops"
BUNDLE_ARTIFACT = "bundle"  # the name of the bundle among the MLflow model's artifacts
PYFUNC_MODEL_FILE = Path(__file__).with_name("mlflow_model.py")
# The most macro-F1, on dev or on test, that a reduced precision may lose against fp32
# before the fast path falls back to fp32 for that model.
PRECISION_TOLERANCE = 0.01
# The types a baseline pipeline is made of, beyond those skops trusts by default.
# Loading refuses anything else, so a tampered file cannot run arbitrary code.
TRUSTED_SKOPS_TYPES = (
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.pipeline.Pipeline",
    "builtins.slice",
)


class BundleError(RuntimeError):
    """A model bundle is missing, incomplete or of an unknown family."""


class Scorer(Protocol):
    family: str

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


def write_bundle_info(bundle_dir: Path, family: str, **extra) -> None:
    """Write `classifier.json`, the file that tells `load_scorer` what the bundle holds."""
    if family not in FAMILIES:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    info = {"family": family, "labels": list(LABELS), **extra}
    (Path(bundle_dir) / BUNDLE_FILE).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def read_bundle_info(bundle_dir: Path) -> dict:
    path = Path(bundle_dir) / BUNDLE_FILE
    if not path.is_file():
        raise BundleError(f"{bundle_dir} is not a model bundle: it has no {BUNDLE_FILE}")
    info = json.loads(path.read_text(encoding="utf-8"))
    if info.get("family") not in FAMILIES:
        raise BundleError(f"{path}: expected family in {FAMILIES}, found {info.get('family')!r}")
    if tuple(info.get("labels", ())) != LABELS:
        raise BundleError(f"{path}: expected labels {list(LABELS)}, found {info.get('labels')}")
    return info


def probabilities_to_frame(probabilities: np.ndarray):
    """The pyfunc output of every family: `label`, then one probability column per label."""
    import pandas as pd

    frame = pd.DataFrame(probabilities, columns=list(LABELS))
    frame.insert(0, "label", [LABELS[i] for i in probabilities.argmax(axis=1)])
    return frame


def load_scorer(bundle_dir: str | Path, *, fast: bool = True) -> Scorer:
    """Load the scorer a bundle describes. `fast=False` keeps BERT in fp32."""
    bundle_dir = Path(bundle_dir)
    info = read_bundle_info(bundle_dir)
    if info["family"] == "baseline":
        return BaselineScorer.load(bundle_dir)
    return BertScorer(bundle_dir, precision=fast_precision(info) if fast else "fp32")


def native_precision() -> str:
    """The reduced precision this CPU computes fast: bf16 if native, else int8.

    bf16 on a CPU without native support is emulated and slower than fp32, which is
    why this is decided per machine rather than once for all.
    """
    import torch

    native = [getattr(torch.cpu, name, lambda: False)() for name in
              ("_is_avx512_bf16_supported", "_is_amx_tile_supported")]  # fmt: skip
    return "bf16" if any(native) else "int8"


def fast_precision(info: dict) -> str:
    """The precision `fast=True` scores a BERT bundle in, given its `classifier.json`.

    This CPU's native reduced precision where training measured it within
    `PRECISION_TOLERANCE` of fp32's macro-F1 on both dev and test; fp32 where it lost
    more, or where it was never measured: the fast path must not change the results.
    """
    precision = native_precision()
    changes = info.get("macro_f1_change", {}).get(precision)
    if not changes or min(changes.values()) < -PRECISION_TOLERANCE:
        return "fp32"
    return precision


class BaselineScorer:
    """TF-IDF + logistic regression, serialised with skops (no pickle).

    The TF-IDF features are computed by `classifier.features`, which gives scikit-learn's
    matrix several times faster; `fast_features` is False for a pipeline it cannot
    compile, which then scores through scikit-learn alone.
    """

    family = "baseline"

    def __init__(self, pipeline):
        from classifier.features import compile_features

        self.pipeline = pipeline
        # The pipeline's own class order is alphabetical; map it onto LABELS once.
        self._columns = [list(pipeline.classes_).index(label) for label in LABELS]
        steps = len(pipeline.steps) if hasattr(pipeline, "steps") else 0
        self._features = compile_features(pipeline[0]) if steps == 2 else None
        self.fast_features = self._features is not None

    @classmethod
    def load(cls, bundle_dir: Path) -> BaselineScorer:
        import skops.io

        path = bundle_dir / PIPELINE_FILE
        if not path.is_file():
            raise BundleError(f"{bundle_dir} is a baseline bundle without {PIPELINE_FILE}")
        untrusted = set(skops.io.get_untrusted_types(file=path)) - set(TRUSTED_SKOPS_TYPES)
        if untrusted:
            raise BundleError(f"{path} holds types this project never saves: {sorted(untrusted)}")
        return cls(skops.io.load(path, trusted=list(TRUSTED_SKOPS_TYPES)))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        import pandas as pd

        if not texts:
            return np.zeros((0, len(LABELS)))
        if self._features is None:
            # Object dtype: pandas' default string storage cannot hold lone surrogates.
            frame = pd.DataFrame({"text": pd.Series(list(texts), dtype=object)})
            probabilities = self.pipeline.predict_proba(frame)
        else:
            probabilities = self.pipeline[-1].predict_proba(self._features(texts))
        return probabilities[:, self._columns]


class BertScorer:
    """A fine-tuned sequence classifier, scored in length-sorted, dynamically padded batches."""

    family = "bert"

    def __init__(
        self,
        model_dir: str | Path,
        *,
        precision: str = "fp32",
        batch_size: int = 32,
    ):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.model_dir = Path(model_dir)
        self.precision = precision
        self.batch_size = batch_size
        self.tokenizer = AutoTokenizer.from_pretrained(self.model_dir)
        model = AutoModelForSequenceClassification.from_pretrained(self.model_dir)
        labels = tuple(model.config.id2label[i] for i in range(model.config.num_labels))
        if labels != LABELS:
            raise BundleError(f"{self.model_dir}: expected id2label {LABELS}, found {labels}")
        model.eval()
        if precision == "bf16":
            model = model.to(torch.bfloat16)
        elif precision == "int8":
            model = quantize_linear_layers(model)
        self.model = model
        # Truncate only where the model has no position embedding left, not at the
        # training length: a long sentence loses nothing the model could have read.
        self.max_length = min(
            model.config.max_position_embeddings, self.tokenizer.model_max_length or 10**6
        )
        # Fast tokenizers mutate their padding/truncation settings on every call,
        # so concurrent calls from several threads must take turns.
        self._tokenizer_lock = threading.Lock()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        probabilities = np.zeros((len(texts), len(LABELS)), dtype=np.float64)
        if not texts:
            return probabilities
        with self._tokenizer_lock:
            encoded = self.tokenizer(list(texts), truncation=False)["input_ids"]
        too_long = [i for i, ids in enumerate(encoded) if len(ids) > self.max_length]
        if too_long:
            warnings.warn(
                f"{len(too_long)} text(s) longer than {self.max_length} tokens were truncated for "
                f"the model (positions {too_long[:10]}{'...' if len(too_long) > 10 else ''})",
                stacklevel=2,
            )
        input_ids = [
            ids[: self.max_length - 1] + ids[-1:] if len(ids) > self.max_length else ids
            for ids in encoded
        ]
        order = sorted(range(len(texts)), key=lambda i: len(input_ids[i]))
        with torch.inference_mode():
            for start in range(0, len(order), self.batch_size):
                batch = order[start : start + self.batch_size]
                with self._tokenizer_lock:
                    features = self.tokenizer.pad(
                        {"input_ids": [input_ids[i] for i in batch]}, return_tensors="pt"
                    )
                logits = self.model(**features).logits
                probabilities[batch] = torch.softmax(logits.float(), dim=-1).numpy()
        return probabilities


def quantize_linear_layers(model):
    """Int8 dynamic quantisation of every `nn.Linear`, weights scaled per output channel.

    Per-channel scales keep macro-F1 close to fp32 where one scale per tensor (the
    default) lost 0.03 on MiniLM; speed is the same.
    """
    import torch
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        # torch 2.13 announces the future removal of quantised tensors once per
        # layer; one note in the README replaces a hundred identical warnings here.
        warnings.filterwarnings("ignore", message=r".*quantiz.*deprecated", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"torch\.ao\.quantization is deprecated")
        return quantize_dynamic(
            model, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8
        )
