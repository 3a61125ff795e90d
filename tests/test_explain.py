"""Attributions: the words that pushed a prediction, for both families."""

from __future__ import annotations

import copy
import unicodedata

import numpy as np
import pytest
from conftest import FIXTURES, read_rows

import classifier
from classifier import explain
from classifier.bundle import LABELS
from classifier.lexicon import PLACEHOLDER, Lexicon
from classifier.scoring import BaselineScorer, BertScorer, baseline_frame
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


LEXICON = Lexicon.read(FIXTURES / "lexicon.tsv")


@pytest.fixture(scope="module")
def fitted_pipeline():
    rows = read_rows(FIXTURES / "sentences.jsonl")
    frame = baseline_frame([row["text"] for row in rows], LEXICON)
    return build_pipeline(BaselineConfig(), c=10.0).fit(frame, [row["label"] for row in rows])


def only_feature(pipeline, name: str, label: str, weight: float = 9.0):
    """A copy of `pipeline` whose only nonzero coefficient is `name`'s for `label`."""
    pipeline = copy.deepcopy(pipeline)
    features, model = pipeline[0], pipeline[-1]
    feature = list(features.get_feature_names_out()).index(name)
    column = list(model.classes_).index(label)
    model.coef_ = np.zeros_like(model.coef_)
    model.coef_[column, feature] = weight
    return pipeline, feature, column


def test_baseline_attribution_is_the_feature_times_its_coefficient(fitted_pipeline):
    pipeline, feature, adopted = only_feature(fitted_pipeline, "words__kcna", "adopted")
    text = "Secondo la Kcna i fantocci sudcoreani hanno ceduto."
    value = pipeline[0].transform(baseline_frame([text], LEXICON))[0, feature]
    # Only one feature counts, and only for `adopted`: the answer is known exactly.
    (attributions,) = explain.explain_baseline(pipeline, [text], [adopted], LEXICON)
    start = text.index("Kcna")
    assert attributions == (
        classifier.Attribution(start, start + len("Kcna"), pytest.approx(value * 6.0)),
    )


def test_the_placeholder_feature_points_at_the_term_it_stands_for(fitted_pipeline):
    name = f"words__{PLACEHOLDER}"
    pipeline, feature, adopted = only_feature(fitted_pipeline, name, "adopted")
    text = "Secondo la Kcna i fantocci  sudcoreani hanno ceduto."
    value = pipeline[0].transform(baseline_frame([text], LEXICON))[0, feature]
    (attributions,) = explain.explain_baseline(pipeline, [text], [adopted], LEXICON)
    start, end = text.index("fantocci"), text.index(" hanno")
    assert attributions == (classifier.Attribution(start, end, pytest.approx(value * 6.0)),)


def test_baseline_attributions_point_into_the_text_as_given(fitted_pipeline):
    scorer = BaselineScorer(fitted_pipeline, LEXICON)
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
