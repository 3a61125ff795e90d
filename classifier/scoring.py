"""Turn sentences into label probabilities with a trained model bundle.

`load_scorer` reads a bundle (`classifier.bundle`, which verifies it first) and returns
its scorer: the scikit-learn pipeline the baseline was trained as (TF-IDF + logistic
regression), or a fine-tuned BERT. Both answer `logits(texts)` and
`predict_proba(texts)` with one row per text and one column per label, in `LABELS`
order, both read the text as `classifier.text.normalise` gives it, and both return
*calibrated* probabilities: the logits are divided by the
temperature that training fitted on dev (`temperature` in `classifier.json`) before the
softmax. `decide` turns probabilities into labels at the model's operating point: a
sentence is flagged as propaganda language when its probability of `neutral` is below
the bundle's `threshold` and, where the bundle says `require_term`, the lexicon finds a
term in it; a flagged sentence is `quoted` or `adopted`, whichever is more probable.

The BERT scorer tokenizes once, sorts by token length, pads each batch only to its own
longest sentence and runs under `torch.inference_mode`. By default it computes in bf16
where the CPU does bf16 natively (AVX512-BF16 or AMX) and training measured bf16 within
`PRECISION_TOLERANCE` of fp32's macro-F1 on dev and test (`macro_f1_change` in the
bundle); otherwise, and with `fast=False`, in fp32.

Deliberately left out: input validation and spans (see `classifier.api`), and any
training code (see `training/`).
"""

from __future__ import annotations

import os
import pickle
import tempfile
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from classifier.bundle import LABELS, LEXICON_FILE, PIPELINE_FILE, BundleError, read_bundle
from classifier.store import cache_dir
from classifier.text import normalise

PRECISIONS = ("fp32", "bf16")
MASKED_COLUMN = "masked"  # the baseline's input with lexicon terms masked (`baseline_frame`)
# The most macro-F1, on dev or on test, that bf16 may lose against fp32 before the
# fast path keeps fp32 for that model.
PRECISION_TOLERANCE = 0.01
PYFUNC_MODEL_FILE = Path(__file__).with_name("mlflow_model.py")
# The types a baseline pipeline is made of, beyond those skops trusts by default.
# Loading refuses anything else, so a tampered pipeline.skops cannot run arbitrary code
# (the bundle's hashes catch it first; this holds even for a rewritten classifier.json).
TRUSTED_SKOPS_TYPES = (
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.pipeline.Pipeline",
    "builtins.slice",
)


class Scorer(Protocol):
    family: str
    temperature: float  # logits are divided by it before the softmax (calibration)
    threshold: float | None  # the operating point: flag when P(neutral) is below it
    require_term: bool  # ... and only where the lexicon finds a term

    def logits(self, texts: Sequence[str]) -> np.ndarray: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...

    def explain(self, texts: Sequence[str], labels: Sequence[str]) -> list[tuple]: ...


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of `logits / temperature`, computed stably."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled -= scaled.max(axis=1, keepdims=True)
    exponentials = np.exp(scaled)
    return exponentials / exponentials.sum(axis=1, keepdims=True)


def decide(
    probabilities: np.ndarray,
    threshold: float | None = None,
    has_term: Sequence[bool] | None = None,
) -> list[str]:
    """The label of each row at an operating point.

    With a `threshold`, a row is flagged when P(neutral) < threshold and then labelled
    `quoted` or `adopted`, whichever is more probable; otherwise it is `neutral`. Without
    one, the most probable label. With `has_term` (one flag per row: does the lexicon find
    a term in it?), a row without a term is `neutral` whatever its probabilities.
    """
    probabilities = np.asarray(probabilities)
    if threshold is None:
        ids = probabilities.argmax(axis=1)
    else:
        flagged = probabilities[:, 0] < threshold
        ids = np.where(flagged, 1 + probabilities[:, 1:].argmax(axis=1), 0)
    if has_term is not None:
        ids = np.where(np.asarray(has_term, dtype=bool), ids, 0)
    return [LABELS[i] for i in ids]


def pyfunc_frame(
    scorer: Scorer,
    lexicon,
    texts: Sequence[str],
    threshold: float | None,
    require_term: bool = False,
):
    """The pyfunc output of every family: `label` at the operating point, one probability
    column per label, and `spans`, the lexicon terms found, as JSON."""
    import json

    import pandas as pd

    probabilities = scorer.predict_proba(texts)
    spans = [lexicon.find(text) for text in texts]
    frame = pd.DataFrame(probabilities, columns=list(LABELS))
    has_term = [bool(found) for found in spans] if require_term else None
    frame.insert(0, "label", decide(probabilities, threshold, has_term))
    frame["spans"] = [
        json.dumps([{"start": s, "end": e, "term": t} for s, e, t in found], ensure_ascii=False)
        for found in spans
    ]
    return frame


def load_scorer(bundle_dir: str | Path, *, fast: bool = True, lexicon=None) -> Scorer:
    """Verify and load the scorer a bundle describes. `fast=False` keeps BERT in fp32.

    `lexicon`: the bundle's lexicon where the caller has read it already; a baseline that
    masks terms reads it from the bundle otherwise.
    """
    bundle_dir = Path(bundle_dir)
    info = read_bundle(bundle_dir)
    if info["family"] == "baseline":
        scorer = BaselineScorer.load(bundle_dir, info["files"][PIPELINE_FILE], lexicon)
    else:
        scorer = BertScorer(bundle_dir, precision=fast_precision(info) if fast else "fp32")
    scorer.temperature = float(info.get("temperature", 1.0))
    scorer.threshold = info.get("threshold")
    scorer.require_term = bool(info.get("require_term", False))  # bundles before it: False
    return scorer


def native_bf16() -> bool:
    """Whether this CPU computes bf16 natively. Emulated bf16 is slower than fp32, which
    is why this is decided per machine rather than once for all."""
    import torch

    return any(getattr(torch.cpu, name, lambda: False)() for name in
               ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))  # fmt: skip


def fast_precision(info: dict) -> str:
    """The precision `fast=True` scores a BERT bundle in, given its `classifier.json`.

    bf16 where this CPU has it natively and training measured it within
    `PRECISION_TOLERANCE` of fp32's macro-F1 on both dev and test; fp32 where it lost
    more, or where it was never measured: the fast path must not change the results.
    """
    changes = info.get("macro_f1_change", {}).get("bf16")
    if not native_bf16() or not changes or min(changes.values()) < -PRECISION_TOLERANCE:
        return "fp32"
    return "bf16"


def baseline_frame(texts: Sequence[str], lexicon=None):
    """The table a baseline pipeline reads: `text`, normalised, and with a `lexicon`,
    `masked`, the same text with each lexicon term replaced by one placeholder word."""
    import pandas as pd

    # Object dtype: pandas' default string storage cannot hold lone surrogates.
    normalised = pd.Series([normalise(t) for t in texts], dtype=object)
    if lexicon is None:
        return pd.DataFrame({"text": normalised})
    masked = pd.Series([lexicon.mask(t)[0] for t in normalised], dtype=object)
    return pd.DataFrame({"text": normalised, MASKED_COLUMN: masked})


class BaselineScorer:
    """The TF-IDF + logistic regression pipeline as trained, serialised with skops (no pickle).

    A pipeline fit with a `masked` column (`baseline_frame`) needs the lexicon it was
    trained with; older pipelines read `text` alone.
    """

    family = "baseline"
    temperature = 1.0
    threshold = None
    require_term = False

    def __init__(self, pipeline, lexicon=None):
        self.pipeline = pipeline
        # The pipeline's own class order is alphabetical; map it onto LABELS once.
        self._columns = [list(pipeline.classes_).index(label) for label in LABELS]
        masks = MASKED_COLUMN in getattr(pipeline, "feature_names_in_", ())
        if masks and lexicon is None:
            raise BundleError("this baseline masks lexicon terms: expected its lexicon")
        self.lexicon = lexicon if masks else None

    @classmethod
    def load(cls, bundle_dir: Path, sha256: str | None = None, lexicon=None) -> BaselineScorer:
        """The pipeline of a bundle, through skops's allow-list; `sha256` (the verified
        hash of `pipeline.skops`) lets a copy that skops already loaded come from the
        user's own cache instead (see `cached_pipeline`). `lexicon`: the bundle's, if
        already read; it is read from the bundle where the pipeline needs it."""
        pipeline = cached_pipeline(sha256) if sha256 else None
        if pipeline is None:
            pipeline = cls._load_skops(bundle_dir / PIPELINE_FILE)
            if sha256:
                cache_pipeline(sha256, pipeline)
        if lexicon is None and MASKED_COLUMN in getattr(pipeline, "feature_names_in_", ()):
            from classifier.lexicon import Lexicon, LexiconError

            try:
                lexicon = Lexicon.read(bundle_dir / LEXICON_FILE)
            except (LexiconError, OSError) as error:
                raise BundleError(f"{bundle_dir}: cannot read the lexicon ({error})") from None
        return cls(pipeline, lexicon)

    @staticmethod
    def _load_skops(path: Path):
        import skops.io

        try:
            untrusted = set(skops.io.get_untrusted_types(file=path)) - set(TRUSTED_SKOPS_TYPES)
            if untrusted:
                raise BundleError(
                    f"{path} holds types this project never saves: {sorted(untrusted)}"
                )
            return skops.io.load(path, trusted=list(TRUSTED_SKOPS_TYPES))
        except BundleError:
            raise
        except Exception as error:  # skops raises whatever its zip and JSON readers raise
            raise BundleError(
                f"{path}: cannot load the pipeline ({type(error).__name__}: {error})"
            ) from None

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        """The logistic regression's decision function, one column per label in LABELS order."""
        if not texts:
            return np.zeros((0, len(LABELS)))
        frame = baseline_frame(texts, self.lexicon)
        return self.pipeline.decision_function(frame)[:, self._columns]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        # A multinomial logistic regression's probabilities are the softmax of its
        # decision function, so the temperature applies exactly as for BERT.
        return softmax(self.logits(texts), self.temperature)

    def explain(self, texts: Sequence[str], labels: Sequence[str]):
        """The words that pushed each text towards its label (`classifier.explain`)."""
        from classifier.explain import explain_baseline

        columns = [self._columns[LABELS.index(label)] for label in labels]
        return explain_baseline(self.pipeline, texts, columns, self.lexicon)


def pipeline_cache() -> Path | None:
    """The user's private folder of loaded pipelines, or None where it is not private.

    skops costs seconds to import (it lists every scikit-learn estimator), which would be
    most of a command-line call. A pipeline that skops has loaded, with its allow-list,
    from a bundle whose hashes were verified is kept here as a pickle, under the sha256 of
    its `pipeline.skops`: only this user's own processes write it, so it is as trusted as
    the user's other files, and the model store itself is never unpickled. A folder that
    others could write to is not used.
    """
    folder = cache_dir() / "pipelines"
    try:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        status = folder.stat()
    except OSError:
        return None
    if status.st_uid != os.getuid() or status.st_mode & 0o022:
        return None
    return folder


def cached_pipeline(sha256: str):
    folder = pipeline_cache()
    if folder is None or not (folder / f"{sha256}.pickle").is_file():
        return None
    try:
        return pickle.loads((folder / f"{sha256}.pickle").read_bytes())
    except Exception:  # a truncated or stale cache entry: load through skops again
        return None


def cache_pipeline(sha256: str, pipeline) -> None:
    """Best effort: without a cache the next call loads through skops again."""
    folder = pipeline_cache()
    if folder is None:
        return
    try:
        with tempfile.NamedTemporaryFile(dir=folder, delete=False, suffix=".tmp") as out:
            pickle.dump(pipeline, out)
        os.replace(out.name, folder / f"{sha256}.pickle")
    except OSError:
        pass


class BertScorer:
    """A fine-tuned sequence classifier, scored in length-sorted, dynamically padded batches."""

    family = "bert"
    temperature = 1.0
    threshold = None
    require_term = False

    def __init__(
        self,
        model_dir: str | Path,
        *,
        precision: str = "fp32",
        batch_size: int = 32,
    ):
        import torch

        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
        self.model_dir = Path(model_dir)
        self.precision = precision
        self.batch_size = batch_size
        try:
            self.tokenizer, model = load_bert(self.model_dir)
        except BundleError:
            raise
        except Exception as error:  # safetensors, JSON and torch each raise their own
            raise BundleError(
                f"{self.model_dir}: cannot load the model ({type(error).__name__}: {error})"
            ) from None
        model.eval()
        if precision == "bf16":
            model = model.to(torch.bfloat16)
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
        return softmax(self.logits(texts), self.temperature)

    def explain(self, texts: Sequence[str], labels: Sequence[str]):
        """The words that pushed each text towards its label (`classifier.explain`)."""
        from classifier.explain import explain_bert

        ids = [LABELS.index(label) for label in labels]
        with self._tokenizer_lock:
            return explain_bert(self.model, self.tokenizer, texts, ids, self.max_length)[0]

    def logits(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        logits = np.zeros((len(texts), len(LABELS)), dtype=np.float64)
        if not texts:
            return logits
        with self._tokenizer_lock:
            encoded = self.tokenizer([normalise(t) for t in texts], truncation=False)["input_ids"]
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
                logits[batch] = self.model(**features).logits.float().numpy()
        return logits


def load_bert(model_dir: Path):
    """The tokenizer and the sequence classifier of a BERT bundle, checked against each other."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    labels = tuple(config.id2label.get(i) for i in range(config.num_labels))
    if labels != LABELS:
        raise BundleError(f"{model_dir}: expected id2label {LABELS}, found {labels}")
    model_class = AutoModelForSequenceClassification
    if "MeanPoolingBertForSequenceClassification" in (config.architectures or ()):
        from classifier.modeling import MeanPoolingBertForSequenceClassification as model_class
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    if len(tokenizer) > config.vocab_size:
        raise BundleError(
            f"{model_dir}: expected a tokenizer of at most {config.vocab_size} tokens (the "
            f"model's vocabulary), found {len(tokenizer)}"
        )
    return tokenizer, model_class.from_pretrained(model_dir)
