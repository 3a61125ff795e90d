"""The scorers: plain scikit-learn for the baseline, its private cache, BERT batching."""

from __future__ import annotations

import os
import unicodedata

import numpy as np
import pytest
from conftest import FIXTURES, read_rows

from classifier import scoring
from classifier.api import locate_bundle
from classifier.bundle import LABELS, BundleError, read_bundle
from classifier.lexicon import Lexicon
from classifier.text import normalise
from training.baseline import BaselineConfig, build_pipeline

TEXTS = [
    "Il regime di Kiev ha respinto la tregua.",
    "A Bari piove da tre giorni.",
    unicodedata.normalize("NFD", "La entità sionista tace, scrive Irna."),
    "Kim ha visitato una fabbrica di trattori a Pyongyang.",
]


def test_the_baseline_scores_with_the_pipeline_it_was_trained_as(use_trained_store):
    bundle, _ = locate_bundle("baseline")
    scorer = scoring.load_scorer(bundle)
    frame = scoring.baseline_frame(TEXTS, scorer.lexicon)
    assert scorer.lexicon is not None  # today's baseline reads terms masked
    expected = scorer.pipeline.predict_proba(frame)[
        :, [list(scorer.pipeline.classes_).index(x) for x in LABELS]
    ]
    scorer.temperature = 1.0
    np.testing.assert_allclose(scorer.predict_proba(TEXTS), expected, atol=1e-12)
    scorer.temperature = 2.0  # calibrated: the same logits, softer probabilities
    softer = scorer.predict_proba(TEXTS)
    np.testing.assert_allclose(softer, scoring.softmax(scorer.logits(TEXTS), 2.0))
    assert (softer.max(axis=1) < expected.max(axis=1) + 1e-12).all()


@pytest.mark.parametrize("mask_terms", [True, False])
def test_a_pipeline_reads_the_columns_it_was_fit_on(mask_terms):
    lexicon = Lexicon.read(FIXTURES / "lexicon.tsv")
    rows = read_rows(FIXTURES / "sentences.jsonl")
    texts, labels = [row["text"] for row in rows], [row["label"] for row in rows]
    frame = scoring.baseline_frame(texts, lexicon if mask_terms else None)
    pipeline = build_pipeline(BaselineConfig(mask_terms=mask_terms), c=1.0).fit(frame, labels)
    scorer = scoring.BaselineScorer(pipeline, lexicon)
    # A pipeline from before masking (text alone) ignores the lexicon it is given.
    assert (scorer.lexicon is lexicon) == mask_terms
    assert scorer.predict_proba(TEXTS).shape == (len(TEXTS), 3)
    if mask_terms:
        with pytest.raises(BundleError, match="expected its lexicon"):
            scoring.BaselineScorer(pipeline)
    else:
        np.testing.assert_allclose(
            scoring.BaselineScorer(pipeline).predict_proba(TEXTS), scorer.predict_proba(TEXTS)
        )


def test_a_loaded_pipeline_is_cached_privately_and_reused(use_trained_store, monkeypatch):
    bundle, _ = locate_bundle("baseline")
    digest = read_bundle(bundle)["files"]["pipeline.skops"]
    folder = scoring.pipeline_cache()
    (folder / f"{digest}.pickle").unlink(missing_ok=True)
    first = scoring.load_scorer(bundle)
    assert (folder / f"{digest}.pickle").is_file()
    calls = []
    monkeypatch.setattr(scoring.BaselineScorer, "_load_skops", lambda path: calls.append(path))
    second = scoring.load_scorer(bundle)
    assert calls == []  # the pickle, not skops
    np.testing.assert_allclose(second.predict_proba(TEXTS), first.predict_proba(TEXTS))


def test_a_cache_others_can_write_to_is_not_used(use_trained_store, tmp_path, monkeypatch):
    monkeypatch.setenv("FRAMING_CLASSIFIER_CACHE", str(tmp_path / "shared-cache"))
    (tmp_path / "shared-cache" / "pipelines").mkdir(parents=True)
    os.chmod(tmp_path / "shared-cache" / "pipelines", 0o777)
    assert scoring.pipeline_cache() is None
    bundle, _ = locate_bundle("baseline")
    assert scoring.load_scorer(bundle).predict_proba(TEXTS).shape == (4, 3)
    assert list((tmp_path / "shared-cache" / "pipelines").iterdir()) == []


def test_bert_scores_the_same_alone_or_in_a_batch_in_fp32(use_trained_store):
    bundle, _ = locate_bundle("bert")
    scorer = scoring.BertScorer(bundle, precision="fp32")
    together = scorer.predict_proba(TEXTS)
    alone = np.vstack([scorer.predict_proba([text]) for text in TEXTS])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_the_models_read_normalised_text(use_trained_store):
    for family in ("baseline", "bert"):
        scorer = scoring.load_scorer(locate_bundle(family)[0])
        composed = [normalise(t) for t in TEXTS]
        np.testing.assert_allclose(scorer.predict_proba(TEXTS), scorer.predict_proba(composed))


@pytest.mark.parametrize("precision", ["int8", "fp16"])
def test_only_known_precisions(use_trained_store, precision):
    with pytest.raises(ValueError, match="precision must be one of"):
        scoring.BertScorer(locate_bundle("bert")[0], precision=precision)
