"""The checker accepts the valid fixture and the committed data, and rejects each broken fixture."""

from __future__ import annotations

import collections
import json

import pytest
from conftest import read_rows, write_rows

from classifier.scoring import LABELS
from training import data


def check(fixture_dir, limits=False):
    return data.check_dataset(
        fixture_dir / "sentences.jsonl",
        fixture_dir / "documents.tsv",
        fixture_dir / "lexicon.tsv",
        fixture_dir / "seeds",
        limits=limits,
    )


def test_valid_fixture_passes(fixture_dir):
    report = check(fixture_dir)
    assert report.errors == []
    assert len(report.sentences) == len(read_rows(fixture_dir / "sentences.jsonl"))


def break_first(rows, only=None, **changes):
    """Apply `changes` to the first row (labelled `only`, if given); `None` deletes a field."""
    row = next(r for r in rows if only is None or r["label"] == only)
    for name, value in changes.items():
        if value is None:
            del row[name]
        else:
            row[name] = value
    return rows


BROKEN = {
    "missing field": (lambda rows: break_first(rows, terms=None), "missing ['terms']"),
    "extra field": (lambda rows: break_first(rows, note="x"), "extra ['note']"),
    "unknown label": (lambda rows: break_first(rows, label="neutral_"), "expected label in"),
    "unknown split": (lambda rows: break_first(rows, split="validation"), "expected split in"),
    "empty text": (lambda rows: break_first(rows, text=""), "expected text, found an empty"),
    "whitespace text": (
        lambda rows: break_first(rows, text="   "),
        "expected text, found an empty",
    ),
    "padded text": (
        lambda rows: break_first(rows, text=" Il vertice è finito."),
        "without leading or trailing whitespace",
    ),
    "term absent from text": (
        lambda rows: break_first(rows, "adopted", terms=["giunta di Kiev"]),
        "'giunta di Kiev' absent",
    ),
    "neutral with terms": (
        lambda rows: break_first(rows, "neutral", terms=["Kharkiv"]),
        "expected no terms for a neutral sentence",
    ),
    "quoted without terms": (
        lambda rows: break_first(rows, "quoted", terms=[]),
        "expected at least one term for a quoted sentence",
    ),
    "non-list terms": (
        lambda rows: break_first(rows, terms="regime di Kiev"),
        "expected terms to be a list of strings",
    ),
    "duplicate id": (
        lambda rows: break_first(rows[1:], id=rows[0]["id"]) and rows,
        "expected a unique id",
    ),
    "document in two splits": (
        lambda rows: break_first(rows, split="dev"),
        "document 'f-01': expected one split, found ['dev', 'train']",
    ),
    "same sentence in two splits": (
        lambda rows: break_first(rows[::-1], "neutral", text=rows[0]["text"]) and rows,
        "expected no identical sentence in another split",
    ),
    "near-duplicate in two splits": (
        lambda rows: (
            break_first(
                rows[::-1],
                "neutral",
                text="L'esercito russo ha colpito una centrale elettrica nella regione di "
                "Kharkiv ieri.",
            )
            and rows
        ),
        "expected no near-duplicate in another split",
    ),  # fmt: skip
    "seed sentence outside test": (
        lambda rows: [dict(r, split="dev") if r["source"] != "authored" else r for r in rows],
        "expected a seed sentence with doc '001_fixture.txt' in test",
    ),
    "seed file missing": (
        lambda rows: [
            dict(r, source="seed:999.txt") if r["source"] != "authored" else r for r in rows
        ],
        "expected seed file '999.txt' in seeds/",
    ),
    "document without metadata": (
        lambda rows: [dict(r, doc="f-99") if r["doc"] == "f-09" else r for r in rows],
        "document 'f-99': expected a row in documents.tsv",
    ),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_each_broken_fixture_is_rejected(fixture_dir, case):
    breaker, expected = BROKEN[case]
    path = fixture_dir / "sentences.jsonl"
    write_rows(path, breaker(read_rows(path)))
    errors = check(fixture_dir).errors
    assert any(expected in error for error in errors), errors


def test_invalid_json_names_the_line(fixture_dir):
    path = fixture_dir / "sentences.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines()
    lines[4] = lines[4][:-1]  # drop the closing brace
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    errors = check(fixture_dir).errors
    assert any(e.startswith("sentences.jsonl:5: expected a JSON object") for e in errors), errors


def test_bad_documents_table_is_rejected(fixture_dir):
    path = fixture_dir / "documents.tsv"
    path.write_text(path.read_text().replace("f-03\tdispatch", "f-03\tpodcast"), encoding="utf-8")
    errors = check(fixture_dir).errors
    assert any("expected genre in" in e and "'podcast'" in e for e in errors), errors


def test_a_story_in_two_splits_is_rejected(fixture_dir):
    path = fixture_dir / "documents.tsv"
    # f-01 is in train and f-07 in dev: telling one event in both leaks it.
    text = path.read_text().replace("\tf-07\trealistic", "\tf-01\trealistic")
    path.write_text(text, encoding="utf-8")
    errors = check(fixture_dir).errors
    assert "story 'f-01': expected one split, found ['dev', 'train']" in errors, errors
    with pytest.raises(data.DataError, match="story 'f-01': expected one split"):
        data.read_splits(fixture_dir / "sentences.jsonl")


def test_an_unknown_layer_is_rejected(fixture_dir):
    path = fixture_dir / "documents.tsv"
    path.write_text(path.read_text().replace("\tf-05\tauthored", "\tf-05\tsynthetic"))
    errors = check(fixture_dir).errors
    assert any("expected layer in" in e and "'synthetic'" in e for e in errors), errors


def test_the_fixture_breaks_the_shortcut_limits_and_each_is_named(fixture_dir):
    # The fixture is tiny and half propaganda: exactly what the limits exist to refuse.
    errors = check(fixture_dir, limits=True).errors
    assert any(
        e.startswith("shortcut limit: expected a neutral share of at least 62%") for e in errors
    )
    assert any("'golpe' at least 25 times, found 0" in e for e in errors), errors
    assert any("a realistic layer of at least 3000 sentences" in e for e in errors), errors
    assert check(fixture_dir).errors == []


def test_shortcut_measures_count_what_they_say():
    rows = [
        {"id": "a-01", "doc": "a", "label": "neutral", "terms": [],
         "text": "Lo riferisce la Tass, citando il ministero della Difesa di Mosca."},
        {"id": "a-02", "doc": "a", "label": "neutral", "terms": [],
         "text": "Il ministro ha definito “utile” l’incontro con il collega del Golpe Club."},
        {"id": "b-01", "doc": "b", "label": "adopted", "terms": ["regime di Kiev"],
         "text": "OSPITE: Il regime di Kiev non vuole la pace."},
        {"id": "b-02", "doc": "b", "label": "quoted", "terms": ["regime di Kiev"],
         "text": "Mosca chiama regime di Kiev il governo ucraino."},
    ]  # fmt: skip
    documents = {
        "a": {"genre": "dispatch", "layer": "realistic"},
        "b": {"genre": "transcript", "layer": "realistic"},
    }
    report = data.CheckReport(sentences=rows, documents=documents)
    measures = data.measure_shortcuts(report)
    assert measures["neutral share"] == 0.5
    assert measures["’ apostrophe"] == 0.25
    assert measures["per label"]["neutral"]["quote marks"] == 0.5
    assert measures["per label"]["neutral"]["attribution verb"] == 1.0
    assert measures["ordinary words"]["golpe"] == {"count": 1, "neutral share": 1.0}
    assert measures["ordinary words"]["Kiev"] == {"count": 2, "neutral share": 0.0}
    counts = measures["counter-examples"]
    assert counts["neutral, citing state media as a source"] == 1
    assert counts["neutral in a state dispatch or bulletin"] == 2
    assert counts["adopted with a speaker tag"] == 1 and counts["adopted in a newsroom genre"] == 1
    assert counts["quoted without quotation marks"] == 1
    assert measures["genre separates quoted from adopted"] == 0.5


def test_neutral_sentence_with_lexicon_term_is_a_warning_not_an_error(fixture_dir):
    path = fixture_dir / "sentences.jsonl"
    rows = read_rows(path)
    row = next(r for r in rows if r["id"] == "f-05-04")
    row["text"] = "Per anni Mosca ha parlato di russofobia in ogni dibattito televisivo."
    write_rows(path, rows)
    report = check(fixture_dir)
    assert report.errors == []
    assert any("f-05-04" in w and "'russofobia'" in w for w in report.warnings)


def test_command_exits_non_zero_and_names_the_line(fixture_dir, capsys):
    path = fixture_dir / "sentences.jsonl"
    write_rows(path, break_first(read_rows(path), label="unsure"))
    status = data.main([
        "--sentences", str(path), "--documents", str(fixture_dir / "documents.tsv"),
        "--lexicon", str(fixture_dir / "lexicon.tsv"), "--seeds", str(fixture_dir / "seeds"),
        "--no-card", "--no-limits",
    ])  # fmt: skip
    assert status == 1
    assert "sentences.jsonl:1: expected label in" in capsys.readouterr().err


def test_command_writes_the_summary_into_the_card(fixture_dir, capsys):
    card = fixture_dir / "README.md"
    card.write_text(f"# Card\n\nbefore\n{data.CARD_START}\nold\n{data.CARD_END}\nafter\n")
    status = data.main([
        "--sentences", str(fixture_dir / "sentences.jsonl"),
        "--documents", str(fixture_dir / "documents.tsv"),
        "--lexicon", str(fixture_dir / "lexicon.tsv"), "--seeds", str(fixture_dir / "seeds"),
        "--card", str(card), "--no-limits",
    ])  # fmt: skip
    assert status == 0
    text = card.read_text()
    assert (
        "\nold\n" not in text and text.startswith("# Card\n\nbefore\n") and text.endswith("after\n")
    )
    rows = read_rows(fixture_dir / "sentences.jsonl")
    counts = collections.Counter((r["split"], r["label"]) for r in rows)
    train_row = "| train | " + " | ".join(str(counts[("train", label)]) for label in LABELS)
    assert train_row in text


def test_read_splits_gives_a_dataset_dict_with_class_labels(fixture_dir):
    splits = data.read_splits(fixture_dir / "sentences.jsonl")
    assert set(splits) == {"train", "dev", "test"}
    assert splits["train"].features["label"].names == list(LABELS)
    rows = read_rows(fixture_dir / "sentences.jsonl")
    first_train = next(r for r in rows if r["split"] == "train")
    assert splits["train"][0]["text"] == first_train["text"]
    assert LABELS[splits["train"][0]["label"]] == first_train["label"]


def test_read_splits_refuses_broken_data(fixture_dir):
    path = fixture_dir / "sentences.jsonl"
    write_rows(path, [r for r in read_rows(path) if r["split"] != "dev"])
    with pytest.raises(data.DataError, match=r"none in \['dev'\]"):
        data.read_splits(path)


def test_near_duplicates_catch_a_swapped_word_but_not_a_new_sentence():
    base = "Il ministro degli Esteri ha incontrato ieri a Roma il suo omologo cinese."
    swapped = "Il ministro degli Esteri ha incontrato ieri a Milano il suo omologo cinese."
    other = (
        "Il ministro degli Esteri cinese ha visitato la Farnesina senza rilasciare dichiarazioni."
    )
    pairs = data.find_near_duplicates([base, swapped, other])
    assert [(i, j) for i, j, _ in pairs] == [(0, 1)]


def test_committed_dataset_passes_and_meets_the_targets():
    report = data.check_dataset()  # the shortcut limits included
    assert report.errors == []
    labels = collections.Counter(row["label"] for row in report.sentences)
    assert len(report.sentences) >= 5000
    assert labels["quoted"] >= 450 and labels["adopted"] >= 450
    regimes = {doc["regime"] for doc in report.documents.values()} - {"none"}
    assert len(regimes) >= 6
    seeds = [r for r in report.sentences if r["source"] != "authored"]
    assert seeds and all(r["split"] == "test" for r in seeds)
    assert {r["doc"] for r in seeds} == {p.name for p in data.SEEDS_DIR.glob("*.txt")}
    for layer in ("authored", "realistic"):
        rows = [r for r in report.sentences if report.documents[r["doc"]]["layer"] == layer]
        words = [len(r["text"].split()) for r in rows]
        # Headlines may be short; one sentence is never a paragraph.
        assert min(words) >= (6 if layer == "authored" else 2) and max(words) <= 90
        shares = collections.Counter(r["split"] for r in rows)
        for split, target in (("train", 0.70), ("dev", 0.15), ("test", 0.15)):
            assert abs(shares[split] / len(rows) - target) < 0.04, (layer, split)


def test_committed_lexicon_is_large_enough():
    from classifier.lexicon import Lexicon

    lexicon = Lexicon.read(data.LEXICON_PATH)
    assert len(lexicon) >= 120
    assert all(entry.neutral.strip() and entry.regime for entry in lexicon.entries)


def test_seed_articles_are_unchanged_copies():
    shared = data.ROOT.parent / "shared" / "seeds"
    if not shared.is_dir():
        pytest.skip("no ../shared/seeds beside this checkout")
    for original in shared.glob("*.txt"):
        assert (data.SEEDS_DIR / original.name).read_bytes() == original.read_bytes()


def test_every_seed_sentence_is_in_its_article():
    for row in map(json.loads, data.SENTENCES_PATH.read_text(encoding="utf-8").splitlines()):
        if row["source"] != "authored":
            article = (data.SEEDS_DIR / row["doc"]).read_text(encoding="utf-8")
            assert row["text"] in article
