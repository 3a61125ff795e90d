"""Each probe rewrites the sentences it should, and scores known models as it should."""

from __future__ import annotations

import pytest
from conftest import FIXTURES

from classifier.lexicon import Lexicon
from training import probes
from training.data import ATTRIBUTION, QUOTE_MARKS

LEXICON = Lexicon.read(FIXTURES / "lexicon.tsv")
ROWS = [
    {"id": "n1", "label": "neutral", "terms": [],
     "text": "Il ministro ha incontrato ieri a Roma il collega cinese."},
    {"id": "n2", "label": "neutral", "terms": [],
     "text": "Kim ha visitato una fabbrica di trattori a Pyongyang."},
    {"id": "q1", "label": "quoted", "terms": ["regime di Kiev"],
     "text": "Il «regime di Kiev» respinge ogni proposta."},
    {"id": "q2", "label": "quoted", "terms": ["Occidente collettivo"],
     "text": "Lavrov ha accusato l'Occidente collettivo di sabotare i negoziati."},
    {"id": "a1", "label": "adopted", "terms": ["regime di Kiev"],
     "text": "Il regime di Kiev bombarda ancora le città del Donbass."},
    {"id": "a2", "label": "adopted", "terms": ["operazione militare speciale"],
     "text": "MOSCA, 3 maggio – Nella zona dell'operazione militare speciale si combatte."},
]  # fmt: skip


def rewrites(probe_name: str, rows=ROWS) -> dict[str, list[tuple[str, str]]]:
    probe = next(p for p in probes.PROBES if p.name == probe_name)
    return {row["id"]: probe.rewrite(row, i, LEXICON) for i, row in enumerate(rows)}


def lexicon_and_marks(texts):
    """A model that reads surface cues only: a term, then quote marks or an attribution verb."""
    labels = []
    for text in texts:
        if not LEXICON.find(text):
            labels.append("neutral")
        elif QUOTE_MARKS.search(text) or ATTRIBUTION.search(text):
            labels.append("quoted")
        else:
            labels.append("adopted")
    return labels


def lexicon_only(texts):
    """A model that flags every term as adopted: it never reads distance."""
    return ["adopted" if LEXICON.find(text) else "neutral" for text in texts]


def test_source_citation_adds_an_agency_before_or_after_neutral_sentences_only():
    found = rewrites("source_citation")
    assert found["n1"] == [
        ("Secondo l'agenzia Tass, il ministro ha incontrato ieri a Roma il collega cinese.",
         "neutral")
    ]  # fmt: skip
    assert found["n2"] == [
        ("Kim ha visitato una fabbrica di trattori a Pyongyang, riferisce la Kcna.", "neutral")
    ]
    assert all(not found[i] for i in ("q1", "q2", "a1", "a2"))


def test_quote_style_swaps_every_mark_and_keeps_the_label():
    found = rewrites("quote_style")
    assert found["q1"] == [("Il “regime di Kiev” respinge ogni proposta.", "quoted")]
    assert found["q2"] == [
        ("Lavrov ha accusato l’Occidente collettivo di sabotare i negoziati.", "quoted")
    ]
    assert found["n1"] == []  # nothing to swap
    straight = {"id": "s", "label": "neutral", "terms": [], "text": 'Ha detto "no" e "mai".'}
    assert rewrites("quote_style", [straight])["s"] == [("Ha detto «no» e «mai».", "neutral")]


def test_speaker_tag_is_added_unless_the_sentence_already_has_a_tag_or_dateline():
    found = rewrites("speaker_tag")
    assert found["n1"] == [(f"CONDUTTORE: {ROWS[0]['text']}", "neutral")]
    assert found["n2"] == [(f"OSPITE: {ROWS[1]['text']}", "neutral")]
    assert found["a1"] == [(f"CONDUTTORE: {ROWS[4]['text']}", "adopted")]
    assert found["a2"] == []


def test_marks_removed_only_where_the_marks_are_the_only_distance():
    found = rewrites("marks_removed")
    assert found["q1"] == [("Il regime di Kiev respinge ogni proposta.", "adopted")]
    assert found["q2"] == []  # distanced by "ha accusato", not by marks


def test_distance_added_by_attribution_or_cosiddetto_to_adopted_sentences():
    attributed = rewrites("attribution_added")
    assert attributed["a1"] == [
        ("Secondo la propaganda del Cremlino, il regime di Kiev bombarda ancora le città del "
         "Donbass.", "quoted")
    ]  # fmt: skip
    assert attributed["a2"] == []  # a dateline cannot follow a clause
    so_called = rewrites("cosiddetto_added")
    assert so_called["a1"] == [
        ("Il cosiddetto regime di Kiev bombarda ancora le città del Donbass.", "quoted")
    ]
    assert so_called["a2"] == []  # "dell'" does not say the gender


def test_term_swapped_puts_the_neutral_wording_where_the_grammar_allows():
    found = rewrites("term_swapped")
    assert found["a1"] == [("Il governo ucraino bombarda ancora le città del Donbass.", "neutral")]
    # "dell'operazione" would become "dell'invasione russa dell'Ucraina": also a vowel, kept.
    assert found["a2"] == [
        ("MOSCA, 3 maggio – Nella zona dell'invasione russa dell'Ucraina si combatte.", "neutral")
    ]
    assert all(not found[i] for i in ("n1", "q1"))


def test_case_and_whitespace_variants_keep_the_label():
    found = rewrites("case_whitespace")
    assert found["n1"] == [(ROWS[0]["text"].lower(), "neutral")]
    assert found["n2"] == [("  ".join(ROWS[1]["text"].split(" ")), "neutral")]
    assert "\n" in found["q1"][0][0] and found["q1"][0][1] == "quoted"


def test_a_surface_cue_model_passes_the_invariances_and_fails_no_direction_it_reads():
    results = {r.name: r for r in probes.run_probes(lexicon_and_marks, ROWS, LEXICON)}
    # Every original is labelled correctly by this model, so every rewrite is counted.
    assert results["source_citation"].applied == 2 and results["source_citation"].passed == 2
    assert results["marks_removed"].passed == results["marks_removed"].applied == 1
    # "Secondo" is an attribution verb to it: the prefix makes it say quoted, as it must.
    assert results["attribution_added"].passed == results["attribution_added"].applied == 1
    # "cosiddetto" is no cue it knows: the rewrite stays adopted, a known failure.
    assert results["cosiddetto_added"].applied == 1 and results["cosiddetto_added"].passed == 0
    failure = results["cosiddetto_added"].failures[0]
    assert failure == {
        "probe": "cosiddetto_added", "id": "a1", "original": ROWS[4]["text"],
        "rewritten": "Il cosiddetto regime di Kiev bombarda ancora le città del Donbass.",
        "expected": "quoted", "predicted": "adopted",
    }  # fmt: skip


def test_a_model_blind_to_distance_fails_every_distance_probe():
    results = {r.name: r for r in probes.run_probes(lexicon_only, ROWS, LEXICON)}
    # It gets no quoted sentence right, so the marks probe has nothing to apply to.
    assert results["marks_removed"].applied == 0
    assert results["attribution_added"].passed == 0 < results["attribution_added"].applied
    assert results["cosiddetto_added"].passed == 0 < results["cosiddetto_added"].applied
    assert results["term_swapped"].passed == results["term_swapped"].applied == 2


def test_a_rate_needs_enough_sentences():
    few = probes.ProbeResult("x", "x", applied=probes.MIN_APPLIED - 1, passed=5)
    enough = probes.ProbeResult("x", "x", applied=40, passed=30)
    assert few.rate is None and enough.rate == 0.75
    table = probes.format_table({"m": [few]})
    assert f"n/a ({probes.MIN_APPLIED - 1} < {probes.MIN_APPLIED})" in table


@pytest.mark.parametrize("probe", probes.PROBES, ids=lambda p: p.name)
def test_no_probe_touches_training_rows_or_changes_its_input(probe):
    row = dict(ROWS[4])
    before = dict(row)
    probe.rewrite(row, 0, LEXICON)
    assert row == before
