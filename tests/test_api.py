"""The public API: loading by name, URI or directory; predictions; articles; bad input."""

from __future__ import annotations

import dataclasses
from concurrent.futures import ThreadPoolExecutor

import mlflow
import numpy as np
import pytest
from mlflow.tracking import MlflowClient

import classifier
from classifier import store
from classifier.store import REGISTERED_MODEL_NAME

# Hand-labelled sentences that a baseline trained on the fixture must get right.
KNOWN_ANSWERS = [
    ("Il regime di Kiev ha respinto ogni proposta di tregua.", "adopted"),
    ("La televisione di Stato parla di «regime di Kiev» nei suoi notiziari.", "quoted"),
    ("Il governo giapponese ha convocato il consiglio di sicurezza.", "neutral"),
    ("Gli imperialisti americani minacciano la pace nella penisola.", "adopted"),
    ('Il Cremlino definisce la guerra una "operazione militare speciale".', "quoted"),
    ("La polizia ha arrestato due persone a Bari.", "neutral"),
]


@pytest.fixture
def baseline_model(use_trained_store):
    return classifier.load("baseline")


def test_known_answers(baseline_model):
    predictions = baseline_model.predict([text for text, _ in KNOWN_ANSWERS])
    assert [p.label for p in predictions] == [label for _, label in KNOWN_ANSWERS]


def test_load_without_a_name_picks_the_best_dev_macro_f1(use_trained_store):
    client = MlflowClient(use_trained_store)
    versions = sorted(
        client.search_model_versions(f"name='{REGISTERED_MODEL_NAME}'"),
        key=lambda v: int(v.version),
    )
    runs = {v.version: client.get_run(v.run_id).data for v in versions}
    # The highest dev macro-F1; on a tie the earlier version keeps @champion.
    best = max(versions, key=lambda v: runs[v.version].metrics["dev_macro_f1"])
    assert classifier.load().family == runs[best.version].tags["family"]


@pytest.mark.parametrize("family", ["baseline", "bert"])
def test_load_a_family(use_trained_store, family):
    model = classifier.load(family)
    assert model.family == family
    assert model.source.startswith(f"models:/{REGISTERED_MODEL_NAME}/")


def test_load_a_uri_an_mlflow_directory_and_a_bundle(use_trained_store, tmp_path):
    uri = f"models:/{REGISTERED_MODEL_NAME}/1"
    expected = classifier.load(uri).predict(["Il regime di Kiev tace."])[0]
    local = mlflow.artifacts.download_artifacts(uri, dst_path=str(tmp_path))
    from_directory = classifier.load(local).predict(["Il regime di Kiev tace."])[0]
    bundle = next(p.parent for p in tmp_path.rglob("classifier.json"))
    from_bundle = classifier.load(bundle).predict(["Il regime di Kiev tace."])[0]
    assert expected == from_directory == from_bundle


def test_predictions_are_frozen_complete_and_in_order(baseline_model):
    texts = [text for text, _ in KNOWN_ANSWERS]
    predictions = baseline_model.predict(texts)
    assert len(predictions) == len(texts)
    assert all(isinstance(p, classifier.Prediction) for p in predictions)
    for p in predictions:
        assert set(p.scores) == set(classifier.LABELS)
        assert sum(p.scores.values()) == pytest.approx(1.0)
        assert p.label == max(p.scores, key=p.scores.get)
    assert baseline_model.predict(texts[::-1]) == predictions[::-1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        predictions[0].label = "neutral"


def test_spans_are_offsets_into_the_input_for_every_label(baseline_model):
    texts = [
        "La Russofobia dei governi europei, scrive l'agenzia, non conosce limiti.",
        "Secondo Teheran l’entità sionista è isolata.",
        "A Bari piove da tre giorni.",
    ]
    predictions = baseline_model.predict(texts)
    first, second, third = predictions
    assert [(text[s:e], term) for s, e, term in first.spans for text in [texts[0]]] == [
        ("Russofobia", "russofobia")
    ]
    assert [texts[1][s:e] for s, e, _ in second.spans] == ["entità sionista"]
    assert third.spans == ()
    assert all(isinstance(span, classifier.Span) for p in predictions for span in p.spans)


def test_score_article_splits_and_points_back_into_the_text(baseline_model):
    article = (
        "Mosca e Pyongyang, un'alleanza\n\n"
        "Il sig. Rossi è arrivato ieri a Mosca. Secondo la KCNA, l'incontro ha celebrato la "
        "«fratellanza militante» tra i due popoli.\n"
    )
    rows = baseline_model.score_article(article)
    assert [sentence for _, _, sentence, _ in rows] == [
        "Mosca e Pyongyang, un'alleanza",
        "Il sig. Rossi è arrivato ieri a Mosca.",
        "Secondo la KCNA, l'incontro ha celebrato la «fratellanza militante» tra i due popoli.",
    ]
    for start, end, sentence, prediction in rows:
        assert article[start:end] == sentence
        for span_start, span_end, _ in prediction.spans:
            assert article[start + span_start : start + span_end] == "fratellanza militante"


@pytest.mark.parametrize(
    "texts, message",
    [
        (None, "expected a list of strings, found NoneType"),
        ("una frase sola", "found a single string"),
        (["ok, una frase", None], "item 1: expected a string, found NoneType"),
        (["ok, una frase", 42], "item 1: expected a string, found int"),
        ([""], "item 0: expected text, found an empty or blank string"),
        (["bene", " \n\t "], "item 1: expected text, found an empty or blank string"),
        (["bene", "male \udc8e"], "item 1: expected valid Unicode, found a lone surrogate"),
    ],
)
def test_bad_input_names_the_position(baseline_model, texts, message):
    with pytest.raises(classifier.InputError, match=message):
        baseline_model.predict(texts)


@pytest.mark.parametrize(
    "article, message",
    [
        ("", "found an empty or blank string"),
        ("   \n", "found an empty or blank string"),
        (None, "found NoneType"),
        ("Prima frase. Seconda \udc8e frase.", "a lone surrogate '.+' at character 21"),
    ],
)
def test_unusable_article_is_refused(baseline_model, article, message):
    with pytest.raises(classifier.InputError, match=message):
        baseline_model.score_article(article)


def test_no_trained_model_yet_says_to_run_make_train(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.setattr(store, "default_store_dir", lambda: tmp_path / "mlruns")
    with pytest.raises(classifier.ModelNotFoundError, match="make train"):
        classifier.load()
    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", empty)
    with pytest.raises(classifier.ModelNotFoundError, match="make train-bert"):
        classifier.load("bert")


@pytest.mark.parametrize(
    "name, message",
    [
        ("roberta", "Unknown model 'roberta'"),
        ("models:/framing-classifier/99", "Cannot load model 'models:/framing-classifier/99'"),
        ("models:/no-such-model/1", "Cannot load model"),
    ],
)
def test_unknown_model_names_and_uris_are_clear_errors(use_trained_store, name, message):
    with pytest.raises(classifier.ModelNotFoundError, match=message):
        classifier.load(name)


def test_a_directory_that_is_not_a_model_is_refused(tmp_path):
    with pytest.raises(classifier.ModelNotFoundError, match="not a model of this project"):
        classifier.load(tmp_path)


def test_over_long_text_is_truncated_with_a_warning_and_spans_cover_it_all(use_trained_store):
    model = classifier.load("bert")  # the tiny BERT reads at most 64 positions
    long_text = "Il vertice si è chiuso senza accordo. " * 40 + "Poi il regime di Kiev ha parlato."
    with pytest.warns(UserWarning, match=r"truncated for the model \(positions \[1\]\)"):
        predictions = model.predict(["Frase breve.", long_text])
    assert len(predictions) == 2
    assert [long_text[s:e] for s, e, _ in predictions[1].spans] == ["regime di Kiev"]


@pytest.fixture(scope="module")
def decisive_bert_bundle(tiny_bert, tmp_path_factory):
    """The tiny BERT fitted to the fixture sentences until its labels are not ties.

    A randomly initialised BERT gives nearly the same [CLS] vector for every
    sentence, so its labels are one coin toss shared by all of them. Full-batch
    Adam with clipped gradients fits the 46 sentences in about a hundred steps.
    """
    import torch
    from conftest import FIXTURES, read_rows
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from classifier.bundle import LABELS, write_bundle

    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(
        tiny_bert, num_labels=3, id2label=dict(enumerate(LABELS)),
        label2id={label: i for i, label in enumerate(LABELS)},
        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
    )  # fmt: skip
    tokenizer = AutoTokenizer.from_pretrained(tiny_bert)
    rows = read_rows(FIXTURES / "sentences.jsonl")
    batch = tokenizer([row["text"] for row in rows], padding=True, return_tensors="pt")
    targets = torch.tensor([LABELS.index(row["label"]) for row in rows])
    optimizer = torch.optim.Adam(model.parameters(), lr=6e-3)
    model.train()
    for _ in range(300):
        loss = torch.nn.functional.cross_entropy(model(**batch).logits, targets)
        if loss.item() < 0.05:
            break
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    assert loss.item() < 0.05, f"the tiny BERT did not fit the fixture (loss {loss.item():.3f})"
    bundle = tmp_path_factory.mktemp("decisive-bert")
    model.save_pretrained(bundle)
    tokenizer.save_pretrained(bundle)
    write_bundle(bundle, "bert", FIXTURES / "lexicon.tsv")
    return bundle


@pytest.mark.parametrize("precision", ["bf16"])
def test_reduced_precision_bert_keeps_the_fp32_labels(decisive_bert_bundle, precision):
    from classifier.scoring import BertScorer

    texts = [text for text, _ in KNOWN_ANSWERS] + [
        "Secondo la KCNA gli «imperialisti americani» preparano la guerra.",
        'Il ministro ha definito "costruttivo" l\'incontro di ieri.',
        "La denazificazione prosegue secondo i piani dello stato maggiore.",
    ]
    exact = BertScorer(decisive_bert_bundle, precision="fp32").predict_proba(texts)
    reduced = BertScorer(decisive_bert_bundle, precision=precision).predict_proba(texts)
    # Rounding may flip a near-tie; wherever fp32 is clear, the label must not change.
    top_two = np.sort(exact, axis=1)[:, -2:]
    clear = top_two[:, 1] - top_two[:, 0] > 0.2
    assert clear.sum() >= len(texts) // 2
    assert len(set(exact.argmax(axis=1)[clear])) >= 2  # a decision, not one label for all
    assert (reduced.argmax(axis=1)[clear] == exact.argmax(axis=1)[clear]).all()
    assert np.abs(reduced - exact).max() < 0.15


def test_fast_is_the_default_and_fp32_one_option_away(use_trained_store):
    from classifier.api import locate_bundle
    from classifier.bundle import read_bundle
    from classifier.scoring import fast_precision

    bundle, _ = locate_bundle("bert")
    assert classifier.load("bert").scorer.precision == fast_precision(read_bundle(bundle))
    assert classifier.load("bert", fast=False).scorer.precision == "fp32"


@pytest.mark.parametrize(
    "native, changes, expected",
    [
        (True, {"bf16": {"dev": -0.005, "test": 0.002}}, "bf16"),
        (True, {"bf16": {"dev": -0.024, "test": -0.009}}, "fp32"),
        (False, {"bf16": {"dev": 0.0, "test": 0.002}}, "fp32"),  # emulated bf16 is slow
        (True, {}, "fp32"),  # a bundle whose training measured nothing
    ],
)
def test_reduced_precision_is_the_default_only_where_training_kept_macro_f1(
    decisive_bert_bundle, tmp_path, monkeypatch, native, changes, expected
):
    import shutil

    from conftest import FIXTURES

    from classifier import scoring
    from classifier.bundle import write_bundle

    bundle = tmp_path / "bundle"
    shutil.copytree(decisive_bert_bundle, bundle)
    (bundle / "classifier.json").unlink()
    write_bundle(bundle, "bert", FIXTURES / "lexicon.tsv", macro_f1_change=changes)
    monkeypatch.setattr(scoring, "native_bf16", lambda: native)

    assert scoring.load_scorer(bundle).precision == expected
    assert scoring.load_scorer(bundle, fast=False).precision == "fp32"


@pytest.mark.parametrize("family", ["baseline", "bert"])
def test_threads_can_share_one_model(use_trained_store, family):
    model = classifier.load(family)
    texts = [f"{text} ({i})" for i in range(8) for text, _ in KNOWN_ANSWERS]
    expected = [model.predict([text])[0] for text in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(lambda text: model.predict([text])[0], texts))
    assert [r.label for r in results] == [e.label for e in expected]
    for result, single in zip(results, expected, strict=True):
        assert result.scores == pytest.approx(single.scores, abs=1e-5)
