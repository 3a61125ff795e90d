"""Load a trained model and score sentences or whole articles.

    model = classifier.load()              # best registered model (dev macro-F1)
    model = classifier.load("bert")        # best of one family
    model.predict(["frase uno", "frase due"])   # -> list[Prediction]
    model.score_article(text)              # -> list[(start, end, sentence, Prediction)]

Every input is checked at this boundary: a user mistake gets an `InputError` that
names the position, never a traceback from deep inside a model. Predictions are
thread-safe: several threads may share one loaded `Model`.
Deliberately left out: training (`training/`) and output formatting (`classifier.cli`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from classifier.lexicon import Lexicon, Span
from classifier.scoring import (
    BUNDLE_ARTIFACT,
    BUNDLE_FILE,
    FAMILIES,
    LABELS,
    LEXICON_FILE,
    BundleError,
    Scorer,
    load_scorer,
)
from classifier.segment import split_sentences
from classifier.store import ModelNotFoundError, best_model_uri, tracking_uri


class InputError(ValueError):
    """Text given to a model is not what it can score; the message names the position."""


@dataclass(frozen=True)
class Prediction:
    label: str  # "neutral" | "quoted" | "adopted"
    scores: dict[str, float]  # one probability per label, summing to 1
    spans: tuple[Span, ...]  # lexicon terms found: (start, end, term), offsets into the input


class Model:
    """A loaded scorer plus the lexicon it was trained with."""

    def __init__(self, scorer: Scorer, lexicon: Lexicon, source: str):
        self.scorer = scorer
        self.lexicon = lexicon
        self.source = source

    @property
    def family(self) -> str:
        return self.scorer.family

    def __repr__(self) -> str:
        return f"Model(family={self.family!r}, source={self.source!r})"

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        """One `Prediction` per text, in the same order."""
        texts = check_texts(texts)
        if not texts:
            return []
        probabilities = self.scorer.predict_proba(texts)
        predictions = []
        for text, row in zip(texts, probabilities, strict=True):
            scores = {label: float(p) for label, p in zip(LABELS, row, strict=True)}
            predictions.append(
                Prediction(
                    label=LABELS[int(row.argmax())],
                    scores=scores,
                    spans=tuple(self.lexicon.find(text)),
                )
            )
        return predictions

    def score_article(self, text: str) -> list[tuple[int, int, str, Prediction]]:
        """Split Italian text into sentences and score each one.

        Returns (start, end, sentence, prediction) with `text[start:end] == sentence`;
        the prediction's spans are offsets into the sentence (add `start` for the article).
        """
        if not isinstance(text, str):
            raise InputError(f"expected the article as a string, found {type(text).__name__}")
        if not text.strip():
            raise InputError("expected an article with some text, found an empty string")
        if problem := unicode_problem(text):
            raise InputError(f"expected valid Unicode in the article, found {problem}")
        bounds = split_sentences(text)
        predictions = self.predict([text[start:end] for start, end in bounds])
        return [
            (start, end, text[start:end], prediction)
            for (start, end), prediction in zip(bounds, predictions, strict=True)
        ]


def check_texts(texts) -> list[str]:
    if isinstance(texts, str):
        raise InputError(
            "expected a list of sentences, found a single string: wrap it as [text], "
            "or use score_article() for a whole article"
        )
    if texts is None or not isinstance(texts, Sequence):
        raise InputError(f"expected a list of strings, found {type(texts).__name__}")
    for position, text in enumerate(texts):
        if not isinstance(text, str):
            raise InputError(f"item {position}: expected a string, found {type(text).__name__}")
        if not text.strip():
            raise InputError(f"item {position}: expected text, found an empty or blank string")
        if problem := unicode_problem(text):
            raise InputError(f"item {position}: expected valid Unicode, found {problem}")
    return list(texts)


def unicode_problem(text: str) -> str | None:
    """What makes `text` invalid Unicode, or None. Tokenizers reject lone surrogates,
    which is what bytes decoded with `errors="surrogateescape"` turn into."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        return f"a lone surrogate {text[error.start]!r} at character {error.start}"
    return None


def load(model: str | os.PathLike | None = None, *, fast: bool = True) -> Model:
    """Load a trained model.

    `model` is None (the best registered model by dev macro-F1), a family name
    ("baseline" or "bert": the best of that family), any MLflow model URI
    (`models:/framing-classifier/3`, `runs:/<id>/model`), or a local directory holding
    an MLflow model or a model bundle. BERT scores in bf16 or int8 where training
    measured that precision within 0.01 macro-F1 of fp32 (`classifier.scoring.fast_precision`),
    else in fp32; `fast=False` always keeps fp32. `model.scorer.precision` tells which.
    """
    bundle, source = locate_bundle(model)
    try:
        scorer = load_scorer(bundle, fast=fast)
        lexicon = Lexicon.read(bundle / LEXICON_FILE)
    except (BundleError, OSError) as error:
        raise ModelNotFoundError(f"Cannot load model {source!r}: {error}") from None
    return Model(scorer, lexicon, source)


def locate_bundle(model: str | os.PathLike | None = None) -> tuple[Path, str]:
    """The local bundle directory of `model` (see `load`), downloaded if need be, and its source."""
    if model is None or model in FAMILIES:
        uri = best_model_uri(model)
        return _bundle_in(_download(uri), uri), uri
    text = str(model)
    path = Path(text).expanduser()
    if path.is_dir():
        return _bundle_in(path, text), text
    if "://" in text or text.startswith(("models:/", "runs:/")):
        return _bundle_in(_download(text), text), text
    raise ModelNotFoundError(
        f"Unknown model {text!r}: expected 'baseline', 'bert', an MLflow model URI such as "
        f"'models:/framing-classifier/1', or an existing model directory."
    )


def _download(uri: str) -> Path:
    import mlflow
    from mlflow.exceptions import MlflowException

    mlflow.set_tracking_uri(tracking_uri())
    try:
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=uri))
    except (MlflowException, OSError) as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise ModelNotFoundError(f"Cannot load model {uri!r}: {message}") from None


def _bundle_in(path: Path, source: str) -> Path:
    """The bundle of an MLflow model directory (with MLmodel), or `path` if it is a bundle."""
    bundle = path
    if (path / "MLmodel").is_file():
        from mlflow.models import Model as MlflowModel

        artifacts = MlflowModel.load(path).flavors.get("python_function", {}).get("artifacts", {})
        if BUNDLE_ARTIFACT in artifacts:
            bundle = path / artifacts[BUNDLE_ARTIFACT]["path"]
    if not (bundle / BUNDLE_FILE).is_file():
        raise ModelNotFoundError(
            f"{source} is not a model of this project: expected an MLflow model logged by "
            f"`make train` or a bundle with {BUNDLE_FILE}."
        )
    return bundle
