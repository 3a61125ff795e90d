"""Attributions: the words that pushed a prediction, for both families."""

from __future__ import annotations

import copy
import unicodedata

import numpy as np
import pandas as pd
import pytest
from conftest import FIXTURES, read_rows

import classifier
from classifier import explain
from classifier.bundle import LABELS
from classifier.scoring import BaselineScorer, BertScorer
from training.baseline import BaselineConfig, build_pipeline

SENTENCES = [
    "Il regime di Kiev ha respinto la tregua.",
    unicodedata.normalize("NFD", "Per Pyongyang i fantocci sudcoreani sono già sconfitti."),
    "A Bari piove da tre gior\u00adni, riferisce la protezione civile.",
]


def test_top_spans_keep_the_largest_pushes_and_join_neighbours():
    units = [(0, 2, 0.1), (3, 9, 2.0), (10, 12, 1.0), (13, 17, -3.0), (18, 20, 0.5)]
    assert explain.top_spans(units, top=2) == [(3, 12, 3.0)]
    assert explain.top_spans(units, top=3) == [(3, 12, 3.0), (18, 20, 0.5)]
    assert explain.top_spans([(0, 1, -1.0)]) == []


@pytest.fixture(scope="module")
def fitted_pipeline():
    rows = read_rows(FIXTURES / "sentences.jsonl")
    frame = pd.DataFrame({"text": [row["text"] for row in rows]})
    return build_pipeline(BaselineConfig(), c=10.0).fit(frame, [row["label"] for row in rows])


def test_baseline_attribution_is_the_feature_times_its_coefficient(fitted_pipeline):
    pipeline = copy.deepcopy(fitted_pipeline)
    features, model = pipeline[0], pipeline[-1]
    names = list(features.get_feature_names_out())
    word = names.index("words__fantocci")
    adopted = list(model.classes_).index("adopted")
    # Only one feature counts, and only for `adopted`: the answer is known exactly.
    model.coef_ = np.zeros_like(model.coef_)
    model.coef_[adopted, word] = 9.0
    text = "Secondo la Kcna i fantocci hanno ceduto."
    value = features.transform(pd.DataFrame({"text": [text]}))[0, word]
    (attributions,) = explain.explain_baseline(pipeline, [text], [adopted])
    start = text.index("fantocci")
    assert attributions == (
        classifier.Attribution(start, start + len("fantocci"), pytest.approx(value * 6.0)),
    )


def test_baseline_attributions_point_into_the_text_as_given(fitted_pipeline):
    scorer = BaselineScorer(fitted_pipeline)
    labels = ["adopted", "adopted", "neutral"]
    for text, spans in zip(SENTENCES, scorer.explain(SENTENCES, labels), strict=True):
        assert spans and len(spans) <= explain.TOP
        assert [s.weight for s in spans] == sorted((s.weight for s in spans), reverse=True)
        for start, end, weight in spans:
            assert 0 <= start < end <= len(text) and weight > 0
            assert text[start:end].strip() == text[start:end]


def test_explain_false_changes_nothing_and_true_adds_attributions(use_trained_store):
    model = classifier.load("baseline")
    plain = model.predict(SENTENCES)
    explained = model.predict(SENTENCES, explain=True)
    assert all(p.attributions == () for p in plain)
    for a, b in zip(plain, explained, strict=True):
        assert (a.label, a.scores, a.spans) == (b.label, b.scores, b.spans)
    assert any(p.attributions for p in explained)


def test_bert_attributions_are_deterministic_and_complete(use_trained_store):
    scorer = classifier.load("bert", fast=False).scorer
    assert isinstance(scorer, BertScorer)
    ids = [LABELS.index("adopted")] * len(SENTENCES)
    args = (scorer.model, scorer.tokenizer, SENTENCES, ids, scorer.max_length)
    first, scores, gaps = explain.explain_bert(*args, steps=64)
    again, _, _ = explain.explain_bert(*args, steps=64)
    assert first == again
    # Completeness: the token scores add up to the logit difference from the baseline.
    totals = np.array([s.sum() for s in scores])
    assert np.all(np.abs(gaps) <= 0.05 * np.abs(totals) + 1e-3), (gaps, totals)
    for text, spans in zip(SENTENCES, first, strict=True):
        for start, end, _ in spans:
            assert 0 <= start < end <= len(text)
