"""The one text check and the one normalisation, and the spans they give back."""

from __future__ import annotations

import sys
import unicodedata

import pytest
from conftest import FIXTURES

from classifier.lexicon import Lexicon
from classifier.text import (
    FORMAT_RANGES,
    normalise,
    normalise_with_offsets,
    text_problem,
)


def test_the_format_ranges_are_this_pythons_category_cf():
    written = {cp for low, high in FORMAT_RANGES for cp in range(low, high + 1)}
    actual = {cp for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp)) == "Cf"}
    assert written == actual


@pytest.mark.parametrize(
    "text, expected",
    [
        (unicodedata.normalize("NFD", "la entità sionista"), "la entità sionista"),
        ("il re\u00adgime di Kiev", "il regime di Kiev"),
        ("dena\u200bzificazione\ufeff", "denazificazione"),
        ("già normale", "già normale"),
    ],
)
def test_normalise_composes_and_drops_format_characters(text, expected):
    assert normalise(text) == expected


def test_every_normalised_character_maps_back_into_the_original():
    text = "\ufeffCos\u00ec \u00e8 " + unicodedata.normalize("NFD", "perché") + " re\u00adgime"
    normalised, starts, ends = normalise_with_offsets(text)
    assert normalised == "Così è perché regime"
    for i, character in enumerate(normalised):
        assert normalise(text[starts[i] : ends[i]]) == unicodedata.normalize("NFC", character)


@pytest.mark.parametrize(
    "text",
    [
        unicodedata.normalize("NFD", "Il regime di Kiev tace."),
        "Il re\u00adgime di Kiev tace.",
        "Il regime\u200b di Kiev tace.",
    ],
)
def test_the_lexicon_finds_terms_in_web_text_and_points_into_it(text):
    spans = Lexicon.read(FIXTURES / "lexicon.tsv").find(text)
    assert [span.term for span in spans] == ["regime di Kiev"]
    surface = text[spans[0].start : spans[0].end]
    assert normalise(surface).lower().replace("\u200b", "") == "regime di kiev"


@pytest.mark.parametrize(
    "value, problem",
    [
        (b"frase", "expected a string, found bytes"),
        (None, "expected a string, found NoneType"),
        ("", "found an empty or blank string"),
        ("  \n", "found an empty or blank string"),
        ("\u200b\u200d", "found only invisible or control characters"),
        ("\x00\x00", "found only invisible or control characters"),
        ("ok \udcff", "a lone surrogate"),
    ],
)
def test_text_problem_names_what_is_wrong(value, problem):
    assert problem in text_problem(value)


def test_a_sentence_has_no_problem():
    assert text_problem("Il ministro ha parlato.\tPoi è partito.") is None
