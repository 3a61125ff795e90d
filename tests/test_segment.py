import random

import pytest

from classifier.segment import split_sentences


def check_segments(text: str, spans: list[tuple[int, int]]) -> None:
    """Assert what must hold for any input: ordered, stripped, non-empty, nothing lost."""
    previous_end = 0
    for start, end in spans:
        assert previous_end <= start < end <= len(text), spans
        segment = text[start:end]
        assert segment == segment.strip(), repr(segment)
        previous_end = end
    # In order and never overlapping, so equal non-whitespace means each character is in
    # exactly one segment.
    kept = "".join(text[start:end] for start, end in spans)
    assert "".join(kept.split()) == "".join(text.split())


def split(text: str) -> list[str]:
    spans = split_sentences(text)
    check_segments(text, spans)
    return [text[start:end] for start, end in spans]


@pytest.mark.parametrize("text", ["", " ", "\n", "\n\n  \t\r\n", "\u00a0\u2028 \u3000"])
def test_empty_and_whitespace_only_input_has_no_sentences(text):
    assert split_sentences(text) == []


def test_sentence_punctuation_ends_sentences():
    text = "Il ministro è arrivato. Ha parlato? Sì! Poi… Niente. Forse... Domani."
    assert split(text) == [
        "Il ministro è arrivato.",
        "Ha parlato?",
        "Sì!",
        "Poi…",
        "Niente.",
        "Forse...",
        "Domani.",
    ]


def test_sentence_starts_with_digit_or_opening_quote():
    text = "Sono morti in tanti. 12 persone sono ferite. «Basta», dice. (Fonte: Ansa.) Fine."
    assert split(text) == [
        "Sono morti in tanti.",
        "12 persone sono ferite.",
        "«Basta», dice.",
        "(Fonte: Ansa.)",
        "Fine.",
    ]


def test_no_split_before_lowercase():
    assert split("Ha detto?! e poi se n'è andato. Forse... vedremo. Ma… chissà.") == [
        "Ha detto?! e poi se n'è andato.",
        "Forse... vedremo.",
        "Ma… chissà.",
    ]


def test_ellipsis_before_capital_ends_sentence():
    assert split("Aspetta... Poi vedremo. Ma… Non importa.") == [
        "Aspetta...",
        "Poi vedremo.",
        "Ma…",
        "Non importa.",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Ha detto: «Basta.» Poi è uscito.", ["Ha detto: «Basta.»", "Poi è uscito."]),
        ('Ha detto: "Basta." Poi è uscito.', ['Ha detto: "Basta."', "Poi è uscito."]),
        ("Ha chiesto: “Perché?” Nessuno risponde.", ["Ha chiesto: “Perché?”", "Nessuno risponde."]),
        ("(Che vergogna!) Il Cremlino tace.", ["(Che vergogna!)", "Il Cremlino tace."]),
        ("Scrive: ‘È finita.’ Poi tace.", ["Scrive: ‘È finita.’", "Poi tace."]),
        ("«Davvero?» ha chiesto. «Sì.»", ["«Davvero?» ha chiesto.", "«Sì.»"]),
        ("«Non ci arrenderemo». Lo ha detto ieri.", ["«Non ci arrenderemo».", "Lo ha detto ieri."]),
    ],
)
def test_closing_quotes_and_brackets_stay_with_their_sentence(text, expected):
    assert split(text) == expected


def test_omission_in_a_quotation_is_not_a_sentence_end():
    text = "«Noi [...] Vinceremo» ha scritto (...) Il Giornale."
    assert split(text) == [text]


@pytest.mark.parametrize(
    "text",
    [
        "Il sig. Rossi e la sig.ra Bianchi sono arrivati.",
        "I sigg. Verdi hanno votato.",
        "La dott.ssa Neri e il dott. Gialli hanno firmato.",
        "Il prof. Conte e la prof.ssa Sala insegnano.",
        "L'avv. Ferri difende l'ing. Bassi e l'arch. Piano.",
        "L'on. Meloni ha incontrato il sen. Renzi e il dep. Fratoianni.",
        "Il pres. Mattarella ha ricevuto il gen. Figliuolo.",
        "Il col. Rossi, il magg. Bianchi, il cap. Verdi e il ten. Neri sono partiti.",
        "Mons. Paglia ha celebrato con p. Rupnik.",
        "La basilica di S. Pietro e dei ss. Apostoli è chiusa.",
        "La festa di sant. Ambrogio è domani.",
        "Lo prevede l'art. 11 della Costituzione.",
        "Gli artt. 3 e 4 sono chiari.",
        "Vedi pag. 12 e pagg. 13-15 del rapporto.",
        "Si legga il cap. 2 e i capp. 3-4 del dossier.",
        "Il decreto n. 18 e i nn. 19 e 20 sono in vigore.",
        "Nel vol. 2 e nei voll. 3-4 della raccolta.",
        "Come in fig. 3 e in tab. 2 del rapporto.",
        "Il caso (cfr. Rossi, op. cit. pag. 4) è noto.",
        "Alcuni paesi, es. Francia e Germania, hanno votato.",
        "Alcuni paesi, p.es. Francia, hanno votato.",
        "La sfida Italia vs. Francia è finita.",
        "Erano presenti ca. 300 persone.",
        "La c.d. Operazione Z è un simbolo, la cd. Denazificazione un pretesto.",
        "L'accordo tra Rossi S.r.l. Milano, Leonardo S.p.A. Roma e Bianchi S.n.c. Torino salta.",
        "Anche Fincantieri s.p.a. Trieste e Verdi s.r.l. Napoli hanno firmato.",
        "Secondo gli U.S.A. Mosca mente, per l'U.E. Kiev resiste e all'O.N.U. Guterres tace.",
        "Nel 44 a.C. Cesare morì e nel 476 d.C. Roma cadde.",
        "Lo ha detto V. Putin a Mosca.",
        "Il libro di J. R. R. Tolkien è un classico.",
        "Sono 10.000 soldati, il 3.5 per cento, alle 2.30 di notte, per 1.000 euro.",
        "Il sito www.esteri.it e l'indirizzo info@esteri.gov.it sono attivi.",
        "Il testo è su https://www.ansa.it/europa/2024/01/articolo.html?id=3 ora.",
        "Aspetta... forse no.",
    ],
)
def test_abbreviations_numbers_and_addresses_do_not_end_sentences(text):
    assert split(text) == [text]


@pytest.mark.parametrize(
    "month", ["gen.", "feb.", "mar.", "apr.", "mag.", "giu.", "lug.", "ago.", "set.", "sett."]
)
def test_month_abbreviation_before_a_year(month):
    text = f"Dal 3 {month} 2022 i combattimenti continuano."
    assert split(text) == [text]


@pytest.mark.parametrize("month", ["ott.", "nov.", "dic."])
def test_month_abbreviation_before_a_day(month):
    text = f"Il vertice è fissato per {month} 12 a Roma."
    assert split(text) == [text]


def test_words_that_look_like_abbreviations_still_end_sentences():
    text = "Mi sono punto con un ago. Poi ho pianto. Così è. Il resto no. Nel 2023. Ecco."
    assert split(text) == [
        "Mi sono punto con un ago.",
        "Poi ho pianto.",
        "Così è.",
        "Il resto no.",
        "Nel 2023.",
        "Ecco.",
    ]


def test_closing_abbreviations_end_a_sentence_before_a_capital():
    # "ecc." and "etc." close a list, and news prose often ends a sentence with them.
    text = "Armi, munizioni, droni ecc. e altro. Carri, elicotteri ecc. Poi il silenzio."
    assert split(text) == [
        "Armi, munizioni, droni ecc. e altro.",
        "Carri, elicotteri ecc.",
        "Poi il silenzio.",
    ]


def test_url_and_email_at_sentence_end():
    text = "Visita www.governo.it. Scrivi a info@esteri.gov.it. Grazie."
    assert split(text) == ["Visita www.governo.it.", "Scrivi a info@esteri.gov.it.", "Grazie."]


def test_title_and_heading_lines_are_segments():
    text = "Mosca accusa Kiev\nIl Cremlino parla. Kiev smentisce.\n\nLe reazioni\nBruxelles tace."
    assert split(text) == [
        "Mosca accusa Kiev",
        "Il Cremlino parla.",
        "Kiev smentisce.",
        "Le reazioni",
        "Bruxelles tace.",
    ]


def test_heading_before_a_quote_line():
    assert split("Le parole di Lavrov\n«Non trattiamo»") == [
        "Le parole di Lavrov",
        "«Non trattiamo»",
    ]


def test_blank_line_always_ends_a_segment():
    text = "una riga senza punto\n\nun'altra in minuscolo\n   \n\t\nterza"
    assert split(text) == ["una riga senza punto", "un'altra in minuscolo", "terza"]


def test_hard_wrap_before_lowercase_does_not_split():
    text = "Il portavoce del Cremlino ha detto che la\noperazione militare speciale\ncontinua."
    assert split(text) == [text]


def test_line_ending_with_a_colon_or_comma_continues():
    text = "Il ministro ha detto:\n«Non ci fermeremo».\nLe truppe,\nIntanto, avanzano."
    assert split(text) == [
        "Il ministro ha detto:\n«Non ci fermeremo».",
        "Le truppe,\nIntanto, avanzano.",
    ]


def test_abbreviation_at_line_end_keeps_sentence_together():
    text = "Lo ha confermato il dott.\nRossi in conferenza."
    assert split(text) == [text]


def test_bullet_lines_are_segments():
    text = (
        "Le richieste di Mosca:\n"
        "- neutralità dell'Ucraina\n"
        "- Riconoscimento della Crimea\n"
        "• smilitarizzazione\n"
        "* nuove elezioni\n"
        "1. Primo punto\n"
        "2) Secondo punto\n"
        "– ultimo punto"
    )
    assert split(text) == [
        "Le richieste di Mosca:",
        "- neutralità dell'Ucraina",
        "- Riconoscimento della Crimea",
        "• smilitarizzazione",
        "* nuove elezioni",
        "1. Primo punto",
        "2) Secondo punto",
        "– ultimo punto",
    ]


def test_bullet_marker_is_not_a_sentence_end_but_sentences_inside_split():
    text = "1. Primo punto. Secondo periodo.\n2. Altro punto che va\na capo."
    assert split(text) == ["1. Primo punto.", "Secondo periodo.", "2. Altro punto che va\na capo."]


def test_offsets_point_into_the_original_text():
    text = "  \r\n\tTitolo\r\n\r\nIl sig. Rossi   ha parlato.\u00a0 Poi\u2028è uscito! «Fine.»  \n"
    spans = split_sentences(text)
    check_segments(text, spans)
    assert spans == [
        (text.index("Titolo"), text.index("Titolo") + len("Titolo")),
        (text.index("Il sig."), text.index("parlato.") + len("parlato.")),
        (text.index("Poi"), text.index("uscito!") + len("uscito!")),
        (text.index("«Fine"), text.index("»") + 1),
    ]


ARTICLE = """\
Ucraina, Lavrov: «L'operazione militare speciale andrà avanti»

Il ministro degli Esteri russo parla all'O.N.U. e accusa l'Occidente

MOSCA – Il ministro degli Esteri russo, Sergej V. Lavrov, ha dichiarato ieri che
l'operazione militare speciale «andrà avanti fino al raggiungimento di tutti gli
obiettivi». Secondo il Cremlino, la c.d. denazificazione dell'Ucraina sarebbe
necessaria. Il dott. Rossi, analista dell'ISPI, non è d'accordo.

Le reazioni
Kiev ha respinto le accuse. «Sono menzogne», ha detto il portavoce. Il prezzo
del gas è salito del 3.5 per cento, a 1.000 euro, dal 3 gen. 2022 a oggi...
e non è finita. Per i dettagli, cfr. art. 5 del trattato (pag. 12).

Cosa chiede Mosca:
- la neutralità di Kiev;
- il riconoscimento delle annessioni.

Fonte: www.ansa.it. Contatti: redazione@ansa.it."""


def test_realistic_article():
    assert split(ARTICLE) == [
        "Ucraina, Lavrov: «L'operazione militare speciale andrà avanti»",
        "Il ministro degli Esteri russo parla all'O.N.U. e accusa l'Occidente",
        "MOSCA – Il ministro degli Esteri russo, Sergej V. Lavrov, ha dichiarato ieri che\n"
        "l'operazione militare speciale «andrà avanti fino al raggiungimento di tutti gli\n"
        "obiettivi».",
        "Secondo il Cremlino, la c.d. denazificazione dell'Ucraina sarebbe\nnecessaria.",
        "Il dott. Rossi, analista dell'ISPI, non è d'accordo.",
        "Le reazioni",
        "Kiev ha respinto le accuse.",
        "«Sono menzogne», ha detto il portavoce.",
        "Il prezzo\ndel gas è salito del 3.5 per cento, a 1.000 euro, dal 3 gen. 2022 a oggi...\n"
        "e non è finita.",
        "Per i dettagli, cfr. art. 5 del trattato (pag. 12).",
        "Cosa chiede Mosca:",
        "- la neutralità di Kiev;",
        "- il riconoscimento delle annessioni.",
        "Fonte: www.ansa.it.",
        "Contatti: redazione@ansa.it.",
    ]


VARIED_TEXTS = [
    ARTICLE,
    "...",
    "?!?! . . . !!!",
    "." * 10_000 + " Fine.",
    "a. B. c. D? e! F… g...",
    "- \n-\n1.\n1. \n•",
    "«»\n\n“”\n()",
    "Riga uno\r\nRiga due\rRiga tre\u2028Riga quattro\x0cRiga cinque\x85Riga sei",
    "\u00a0\u3000Testo\u2009con spazi\u202fstrani. Fine\u00a0.\u00a0Ecco",
    "U.S.A. U.S.A. U.S.A. J. J. J. sig. sig. sig. 1. 2. 3.",
    "x" * 5_000 + ". " + "Y" * 5_000,
]


@pytest.mark.parametrize("text", VARIED_TEXTS)
def test_segments_are_ordered_stripped_and_cover_all_text(text):
    check_segments(text, split_sentences(text))


def test_random_texts_keep_every_character():
    pieces = [
        "Il", "sig.", "Rossi", "ha", "detto", ".", "!", "?", "…", "...", "«", "»", '"', "'",
        "(", ")", "U.S.A.", "3.5", "10.000", "-", "•", "1.", "\n", "\n\n", " ", "\t", "\r\n",
        "à", "È", "www.ansa.it", "ecc.", "ago.", "V.", "\u00a0",
    ]  # fmt: skip
    generator = random.Random(1234)
    for _ in range(300):
        text = "".join(generator.choice(pieces) + generator.choice(["", " "]) for _ in range(60))
        check_segments(text, split_sentences(text))
