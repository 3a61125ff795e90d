from concurrent.futures import ThreadPoolExecutor

import pytest

from classifier.lexicon import PLACEHOLDER, Lexicon, LexiconEntry, LexiconError, Span

HEADER = "term\tregime\tneutral\tvariants\tkind\tnote"
ROWS = [
    "operazione militare speciale\trussia\tinvasione russa dell'Ucraina\t"
    "operazione militare speciale|operazioni militari speciali\teuphemism\t"
    "Kremlin term for the invasion",
    "regime di kiev\trussia\tgoverno ucraino\tregime di kiev|regime di kyiv\tterm\t",
    "neonazismo\trussia\t(none: a false accusation)\tneonazismo|neonazista|neonazisti|neonaziste"
    "\tnarrative phrase\t",
]


def write_lexicon(tmp_path, lines, name="lexicon.tsv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def lexicon(tmp_path):
    return Lexicon.read(write_lexicon(tmp_path, [HEADER, *ROWS]))


def entry(term, *variants, regime="russia"):
    return LexiconEntry(term, regime, "", (term, *variants), "")


def surfaces(text, spans):
    return [(text[span.start : span.end], span.term) for span in spans]


def test_read_valid_file(lexicon):
    assert len(lexicon) == 3
    first, second, third = lexicon.entries
    assert first == LexiconEntry(
        term="operazione militare speciale",
        regime="russia",
        neutral="invasione russa dell'Ucraina",
        variants=("operazione militare speciale", "operazioni militari speciali"),
        note="Kremlin term for the invasion",
        kind="euphemism",
    )
    assert second.note == ""
    assert third.variants == ("neonazismo", "neonazista", "neonazisti", "neonaziste")


def test_read_skips_blank_lines_and_accepts_windows_line_endings(tmp_path):
    path = tmp_path / "windows.tsv"
    path.write_bytes("\r\n".join([HEADER, ROWS[0], "", ROWS[1], ""]).encode("utf-8"))
    assert [entry.term for entry in Lexicon.read(path).entries] == [
        "operazione militare speciale",
        "regime di kiev",
    ]


def test_header_only_gives_an_empty_lexicon_that_finds_nothing(tmp_path):
    lexicon = Lexicon.read(write_lexicon(tmp_path, [HEADER]))
    assert len(lexicon) == 0
    assert lexicon.find("operazione militare speciale") == []


@pytest.mark.parametrize(
    "header",
    ["term\tregime\tneutral\tvariants", "term,regime,neutral,variants,note", ROWS[0]],
)
def test_bad_header(tmp_path, header):
    path = write_lexicon(tmp_path, [header, *ROWS])
    with pytest.raises(LexiconError) as error:
        Lexicon.read(path)
    message = str(error.value)
    assert str(path) in message
    assert "line 1" in message
    assert "expected" in message and repr(HEADER) in message
    assert repr(header) in message


def test_empty_file(tmp_path):
    path = tmp_path / "empty.tsv"
    path.write_text("", encoding="utf-8")
    with pytest.raises(LexiconError, match="line 1: expected the header"):
        Lexicon.read(path)


@pytest.mark.parametrize(
    ("row", "found"),
    [
        ("neonazismo\trussia\tnessuno\tneonazismo", "found 4"),
        ("neonazismo\trussia\tnessuno\tneonazismo\tterm\tnota\textra", "found 7"),
        ("neonazismo russia nessuno neonazismo", "found 1"),
    ],
)
def test_wrong_field_count_names_the_line(tmp_path, row, found):
    path = write_lexicon(tmp_path, [HEADER, ROWS[0], row])
    with pytest.raises(LexiconError) as error:
        Lexicon.read(path)
    message = str(error.value)
    assert f"{path}, line 3" in message
    assert "expected 6" in message
    assert found in message


def test_line_number_counts_skipped_blank_lines(tmp_path):
    path = write_lexicon(tmp_path, [HEADER, "", ROWS[0], "", "bad\trow"])
    with pytest.raises(LexiconError, match=r"line 5: expected 6 .*found 2"):
        Lexicon.read(path)


def test_term_not_among_its_variants(tmp_path):
    row = "regime di kiev\trussia\tgoverno ucraino\tregime di kyiv|giunta di kiev\tterm\t"
    path = write_lexicon(tmp_path, [HEADER, row])
    with pytest.raises(LexiconError) as error:
        Lexicon.read(path)
    message = str(error.value)
    assert f"{path}, line 2" in message
    assert "'regime di kiev' among its variants" in message
    assert "regime di kyiv|giunta di kiev" in message


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("\trussia\tx\tneonazismo\tterm\t", "term"),
        ("neonazismo\t\tx\tneonazismo\tterm\t", "regime"),
        ("neonazismo\trussia\tx\t\tterm\t", "variants"),
    ],
)
def test_empty_required_field(tmp_path, row, field):
    path = write_lexicon(tmp_path, [HEADER, row])
    with pytest.raises(LexiconError, match=f"line 2: expected a non-empty {field}"):
        Lexicon.read(path)


def test_unknown_kind_names_the_line(tmp_path):
    path = write_lexicon(tmp_path, [HEADER, "neonazismo\trussia\tx\tneonazismo\tinsult\t"])
    with pytest.raises(LexiconError, match="line 2: expected kind in .*found 'insult'"):
        Lexicon.read(path)


def test_empty_variant(tmp_path):
    path = write_lexicon(
        tmp_path, [HEADER, "neonazismo\trussia\tx\tneonazismo||neonazisti\tterm\t"]
    )
    with pytest.raises(LexiconError, match="line 2: .*empty variant"):
        Lexicon.read(path)


def test_variant_of_two_terms(tmp_path):
    row = "denazificazione\trussia\tx\tdenazificazione|neonazisti\tterm\t"
    path = write_lexicon(tmp_path, [HEADER, *ROWS, row])
    with pytest.raises(LexiconError, match="line 5: .*'neonazisti' under both"):
        Lexicon.read(path)
    with pytest.raises(LexiconError, match="under both"):
        Lexicon.from_entries([entry("a", "b"), entry("c", "B")])


def test_lexicon_error_is_a_value_error():
    assert issubclass(LexiconError, ValueError)


def test_from_entries_matches_read(lexicon):
    rebuilt = Lexicon.from_entries(lexicon.entries)
    text = "Il regime di Kyiv e i neonazisti."
    assert rebuilt.entries == lexicon.entries
    assert rebuilt.find(text) == lexicon.find(text)


def test_find_is_case_insensitive(lexicon):
    text = "L'OPERAZIONE Militare Speciale contro il Regime di KIEV."
    assert surfaces(text, lexicon.find(text)) == [
        ("OPERAZIONE Militare Speciale", "operazione militare speciale"),
        ("Regime di KIEV", "regime di kiev"),
    ]


def test_find_inflected_variants(lexicon):
    text = "Le operazioni militari speciali contro neonazisti e neonaziste, per il neonazismo."
    assert surfaces(text, lexicon.find(text)) == [
        ("operazioni militari speciali", "operazione militare speciale"),
        ("neonazisti", "neonazismo"),
        ("neonaziste", "neonazismo"),
        ("neonazismo", "neonazismo"),
    ]


def test_find_prefers_the_longest_variant_at_the_same_start():
    lexicon = Lexicon.from_entries(
        [
            entry("regime"),
            entry("regime di kiev"),
            entry("regime di kiev neonazista"),
            entry("nazista"),
        ]
    )
    text = "Il regime di Kiev neonazista, il regime di Kievano, il regime di kiev."
    assert surfaces(text, lexicon.find(text)) == [
        ("regime di Kiev neonazista", "regime di kiev neonazista"),
        ("regime", "regime"),
        ("regime di kiev", "regime di kiev"),
    ]


def test_find_returns_leftmost_non_overlapping_matches():
    lexicon = Lexicon.from_entries([entry("guerra santa"), entry("santa alleanza")])
    text = "una guerra santa alleanza"
    assert lexicon.find(text) == [Span(4, 16, "guerra santa")]


def test_find_only_on_word_boundaries(lexicon):
    text = "antineonazisti, neonazistico, neonazisti2, _neonazisti, neonazisti_, (neonazisti)"
    assert surfaces(text, lexicon.find(text)) == [("neonazisti", "neonazismo")]


def test_find_after_an_elided_article():
    lexicon = Lexicon.from_entries([entry("occidente collettivo")])
    text = "dell'Occidente collettivo e dell’occidente collettivo"
    assert [span.start for span in lexicon.find(text)] == [5, 33]


def test_find_treats_typographic_apostrophes_as_straight():
    lexicon = Lexicon.from_entries(
        [entry("nemici dell'ucraina"), entry("regime d’occupazione", regime="x")]
    )
    text = "Nemici dell’Ucraina, nemici dellʼUcraina, nemici dell‘Ucraina, nemici dell'Ucraina; "
    text += "regime d'occupazione, regime d’occupazione"
    assert surfaces(text, lexicon.find(text)) == [
        ("Nemici dell’Ucraina", "nemici dell'ucraina"),
        ("nemici dellʼUcraina", "nemici dell'ucraina"),
        ("nemici dell‘Ucraina", "nemici dell'ucraina"),
        ("nemici dell'Ucraina", "nemici dell'ucraina"),
        ("regime d'occupazione", "regime d’occupazione"),
        ("regime d’occupazione", "regime d’occupazione"),
    ]


def test_find_a_term_across_a_line_break_and_extra_spaces(lexicon):
    text = "Continua l'operazione\nmilitare  \t speciale, dice il regime di\r\nkiev."
    assert surfaces(text, lexicon.find(text)) == [
        ("operazione\nmilitare  \t speciale", "operazione militare speciale"),
        ("regime di\r\nkiev", "regime di kiev"),
    ]


def test_variant_with_several_spaces_matches_single_space():
    lexicon = Lexicon.from_entries([LexiconEntry("a b", "r", "", ("a b", "a   c"), "")])
    assert lexicon.find("x a c y") == [Span(2, 5, "a b")]


def test_offsets_index_the_original_text(lexicon):
    # "İ" lowercases to two characters: offsets must not drift after it.
    prefix = "İİ Città «Kyiv» è lì. " * 5_000
    text = prefix + "Il REGIME DI KYIV\ne i neonazisti."
    assert len(text) > 100_000
    spans = lexicon.find(text)
    assert spans == [
        Span(len(prefix) + 3, len(prefix) + 17, "regime di kiev"),
        Span(len(prefix) + 22, len(prefix) + 32, "neonazismo"),
    ]
    assert text[spans[0].start : spans[0].end] == "REGIME DI KYIV"


def test_mask_replaces_each_term_and_maps_back(lexicon):
    text = "Il “REGIME DI KYIV”\ne i neonazisti, dice Tass."
    masked, starts, ends = lexicon.mask(text)
    assert masked == f"Il “{PLACEHOLDER}”\ne i {PLACEHOLDER}, dice Tass."
    assert len(starts) == len(ends) == len(masked)
    first = masked.index(PLACEHOLDER)
    assert text[starts[first] : ends[first]] == "REGIME DI KYIV"
    assert text[starts[-1] : ends[-1]] == "." and ends[-1] == len(text)
    assert lexicon.mask("Nessun termine qui.") == ("Nessun termine qui.", list(range(19)),
                                                    list(range(1, 20)))  # fmt: skip


def test_find_nothing(lexicon):
    assert lexicon.find("") == []
    assert lexicon.find("Il governo ucraino ha parlato.") == []


def test_find_on_a_long_text_with_a_large_lexicon():
    entries = [entry(f"termine {number}", f"termini {number}") for number in range(1_000)]
    lexicon = Lexicon.from_entries(entries)
    text = "Una frase qualunque con parole diverse e termini 999 alla fine. " * 1_600
    assert len(text) > 100_000
    spans = lexicon.find(text)
    assert len(spans) == 1_600
    assert {span.term for span in spans} == {"termine 999"}


def test_find_from_many_threads(lexicon):
    texts = [
        f"Il regime di Kiev {number} e i neonazisti." * (number % 7 + 1) for number in range(50)
    ]
    expected = [lexicon.find(text) for text in texts]
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(lexicon.find, texts)) == expected
