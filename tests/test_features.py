"""The compiled TF-IDF features equal scikit-learn's, for the baseline's settings and others."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from classifier.features import compile_features, compile_vectorizer
from classifier.scoring import LABELS, BaselineScorer
from training.baseline import BaselineConfig, build_pipeline
from training.data import ROOT

ODD_TEXTS = [
    "",
    " ",
    "a",
    "\t",
    "due  spazi,\ttab singolo\t\te a capo\n\nfine",
    "MAIUSCOLE e İstanbul, ß e ǅ: lower() cambia la lunghezza",
    "un'emoji 🙂 fuori dal vocabolario e «virgolette» “inglesi”",
    "surrogato \ud800 spaiato",
    "中文字符只有未知的字",
    "aaaaaaaaaaaaaaa aaaaa aaaaa",
    "la la la la la la",
]


@pytest.fixture(scope="module")
def texts() -> list[str]:
    """Every sentence of the dataset, then the odd ones."""
    lines = (ROOT / "labels" / "sentences.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["text"] for line in lines if line] + ODD_TEXTS


def baseline_vectorizers():
    features = build_pipeline(BaselineConfig(), c=1.0)[0]
    return [vectorizer for _, vectorizer, _ in features.transformers]


@pytest.mark.parametrize(
    "vectorizer",
    [
        *baseline_vectorizers(),
        TfidfVectorizer(analyzer="char", ngram_range=(1, 3)),
        TfidfVectorizer(analyzer="char", ngram_range=(2, 4), lowercase=False, norm="l1"),
        TfidfVectorizer(analyzer="char", ngram_range=(3, 3), use_idf=False, norm=None),
        TfidfVectorizer(ngram_range=(1, 3), sublinear_tf=True),
        TfidfVectorizer(ngram_range=(2, 2), min_df=2),
        TfidfVectorizer(ngram_range=(1, 2), max_features=500, dtype=np.float32),
    ],
    ids=lambda vectorizer: f"{vectorizer.analyzer}{vectorizer.ngram_range}",
)
def test_compiled_features_equal_scikit_learns(vectorizer, texts):
    # Fit on half the sentences, so the other half brings unseen n-grams.
    vectorizer.fit(texts[: len(texts) // 2])
    compiled = compile_vectorizer(vectorizer)
    assert compiled is not None

    expected, found = vectorizer.transform(texts), compiled.transform(texts)

    assert found.shape == expected.shape and found.dtype == expected.dtype
    for matrix in (expected, found):
        matrix.sort_indices()
    np.testing.assert_array_equal(found.indptr, expected.indptr)
    np.testing.assert_array_equal(found.indices, expected.indices)
    np.testing.assert_allclose(found.data, expected.data, rtol=1e-6)
    assert compiled.transform([]).shape == (0, len(vectorizer.vocabulary_))


@pytest.mark.parametrize(
    "vectorizer",
    [
        TfidfVectorizer(analyzer="char_wb"),
        TfidfVectorizer(analyzer=str.split),
        TfidfVectorizer(stop_words=["il", "la"]),
        TfidfVectorizer(strip_accents="unicode"),
        TfidfVectorizer(binary=True),
        # A token pattern that keeps spaces inside tokens makes n-gram terms ambiguous.
        TfidfVectorizer(token_pattern=r"\w+ \w+|\w+", ngram_range=(1, 2)),
    ],
)
def test_options_it_does_not_reproduce_are_left_to_scikit_learn(vectorizer, texts):
    vectorizer.fit(texts[:300])

    assert compile_vectorizer(vectorizer) is None


def test_unfitted_or_foreign_steps_are_not_compiled():
    assert compile_vectorizer(TfidfVectorizer()) is None
    assert compile_features(TfidfVectorizer()) is None


@pytest.mark.parametrize("analyzer, fast", [("char", True), ("char_wb", False)])
def test_baseline_scorer_gives_the_pipelines_probabilities(fixture_dir, texts, analyzer, fast):
    rows = [json.loads(line) for line in (fixture_dir / "sentences.jsonl").open(encoding="utf-8")]
    pipeline = build_pipeline(BaselineConfig(), c=1.0)
    # char_wb is an analyzer the compiled path does not reproduce: scikit-learn scores.
    pipeline.set_params(features__characters__analyzer=analyzer)
    pipeline.fit(pd.DataFrame({"text": [row["text"] for row in rows]}), [r["label"] for r in rows])
    expected = pipeline.predict_proba(pd.DataFrame({"text": pd.Series(texts, dtype=object)}))
    expected = expected[:, [list(pipeline.classes_).index(label) for label in LABELS]]

    scorer = BaselineScorer(pipeline)

    assert scorer.fast_features is fast
    np.testing.assert_allclose(scorer.predict_proba(texts), expected, rtol=0, atol=1e-12)
