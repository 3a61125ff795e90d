"""Split Italian news text into sentences, given as character offsets into the original text.

The splitter is a rule-based scanner that works in two passes:

1. Lines are grouped into blocks. A blank line always ends a block and a bullet line
   ("- ", "• ", "* ", "1. ") always starts one. A line that does not end with sentence
   punctuation ends its block when the next line opens a new paragraph (it starts with a
   capital letter or an opening quote): that is how titles and headings are told apart from
   hard-wrapped paragraphs, whose next line starts lowercase.
2. Inside a block, every run of sentence punctuation (. ! ? … ...) followed by whitespace and
   a sentence start is a candidate boundary. A few checks reject the candidates that belong to
   abbreviations, initials and dotted acronyms. Full stops inside numbers, URLs and e-mail
   addresses are never candidates, because no whitespace follows them.

Nothing is normalised, so offsets index the text as given, each sentence is stripped of
surrounding whitespace, and every non-whitespace character lands in exactly one sentence.

Deliberately left out:
- statistical models (Punkt and the like) and any language other than Italian;
- sentences that end before a lowercase word ("ha detto. poi"), which are never split;
- quotations spanning several sentences: each sentence inside «...» is split on its own;
- a hard wrap right before a capitalised word ("ha incontrato\\nPutin"), which looks exactly
  like a heading followed by a paragraph and is therefore split.
"""

import re

SENTENCE_PUNCTUATION = ".!?…"
# Straight quotes and the apostrophe both open and close, so they appear in both sets.
CLOSING_MARKS = "»”’\"')]"
OPENING_MARKS = "«“‘\"'(["
# A line ending like this is waiting for more, even if the next line starts with a capital.
CONTINUATION_ENDINGS = ",;:«“‘(["

# A run of sentence punctuation, the quotes and brackets that close with it, and a lookahead
# for the whitespace and first character of what follows. Starting only at the first
# punctuation mark of a run keeps long runs of dots linear.
BOUNDARY = re.compile(r"(?<![.!?…])(?P<punctuation>[.!?…]+)[»”’\"')\]]*(?=\s+(?P<next>\S))")
BULLET = re.compile(r"(?:[-•*▪◦‣–—]|\d{1,3}[.)])\s+")
# The same line breaks that str.splitlines() knows about.
LINE_BREAK = re.compile(r"\r\n|[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
# Company forms (S.p.A., S.r.l., S.n.c.) and acronyms (U.S.A., U.E., O.N.U., a.C., c.d.).
DOTTED_ACRONYM = re.compile(r"(?:[^\W\d_]\.){2,}")
ELISION = re.compile(r"['’]")

# Abbreviations are looked up lowercased, with their final full stop. Forms with a full stop
# inside a word, such as "sig.ra", "dott.ssa" and "prof.ssa", need no entry: a full stop
# followed by a letter is never a candidate boundary.
TITLES = frozenset(
    """
    sig. sigg. dott. dr. prof. avv. ing. arch. geom. rag. on. sen. dep. pres. gen. col. magg.
    cap. ten. mons. card. p. s. ss. sant. egr. gent. spett.
    """.split()
)
REFERENCES = frozenset(
    """
    art. artt. pag. pagg. cap. capp. n. nn. vol. voll. fig. tab. cfr. es. p.es. vs. ca. cd. op.
    tel.
    """.split()
)
# "ecc.", "etc.", "cit." and "ibid." are left out on purpose: they close a phrase, and news
# prose often ends a sentence with them, so a capital letter after them starts a new sentence.
# (A lowercase word after them never splits, like after any other word.)
ABBREVIATIONS = TITLES | REFERENCES
# Month abbreviations are also ordinary words ("ago" is a needle, "set" a set), so they only
# hold a sentence together when a day or a year follows them: "dal 3 ago. 2022".
MONTHS = frozenset("gen. feb. mar. apr. mag. giu. lug. ago. set. sett. ott. nov. dic.".split())


def split_sentences(text: str) -> list[tuple[int, int]]:
    """Return the (start, end) offsets of each sentence of `text`, in order."""
    sentences = []
    for block_start, block_end in _find_blocks(text):
        sentences.extend(_split_block(text, block_start, block_end))
    return sentences


def _find_blocks(text: str) -> list[tuple[int, int]]:
    """Group the lines of `text` into blocks that no sentence crosses."""
    blocks: list[list[int]] = []
    previous_line = None  # the last non-blank line, while the current block is still open
    for line_start, line_end in _find_lines(text):
        line_start, line_end = _strip_span(text, line_start, line_end)
        if line_start == line_end:
            previous_line = None
            continue
        line = text[line_start:line_end]
        if previous_line is None or _starts_new_block(previous_line, line):
            blocks.append([line_start, line_end])
        else:
            blocks[-1][1] = line_end
        previous_line = line
    return [(start, end) for start, end in blocks]


def _find_lines(text: str) -> list[tuple[int, int]]:
    """Return the (start, end) offsets of every line of `text`, without its line break."""
    lines = []
    line_start = 0
    for line_break in LINE_BREAK.finditer(text):
        lines.append((line_start, line_break.start()))
        line_start = line_break.end()
    lines.append((line_start, len(text)))
    return lines


def _starts_new_block(previous_line: str, line: str) -> bool:
    """Decide whether a single line break between two non-blank lines ends a block."""
    if BULLET.match(line):
        return True
    if _ends_with_sentence_punctuation(previous_line):
        # The sentence scanner decides, so that "il dott.\nRossi" stays together.
        return False
    if previous_line.endswith(tuple(CONTINUATION_ENDINGS)):
        return False
    # A title or heading is followed by a new paragraph; a hard wrap continues in lowercase.
    return line[0].isupper() or line[0] in OPENING_MARKS


def _ends_with_sentence_punctuation(line: str) -> bool:
    return line.rstrip(CLOSING_MARKS).endswith(tuple(SENTENCE_PUNCTUATION))


def _split_block(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Split the block text[start:end] at the candidate boundaries that end a sentence."""
    sentences = []
    sentence_start = start
    # The full stop of a "1. " list marker is not the end of a sentence.
    bullet = BULLET.match(text, start, end)
    scan_start = bullet.end() if bullet else start
    for candidate in BOUNDARY.finditer(text, scan_start, end):
        if _ends_sentence(text, candidate, start):
            sentences.append((sentence_start, candidate.end()))
            sentence_start = candidate.start("next")
    sentences.append((sentence_start, end))
    return sentences


def _ends_sentence(text: str, candidate: re.Match, block_start: int) -> bool:
    """Check whether a candidate boundary really ends a sentence."""
    next_character = text[candidate.start("next")]
    if not _opens_sentence(next_character):
        return False
    punctuation_start = candidate.start("punctuation")
    if punctuation_start > block_start and text[punctuation_start - 1] in "[(":
        # "[...]" and "(...)" mark words left out of a quotation.
        return False
    if candidate.group("punctuation") != ".":
        return True
    word = _word_before(text, candidate.end("punctuation"), block_start)
    return not _is_abbreviation(word, next_character)


def _opens_sentence(character: str) -> bool:
    return character.isupper() or character.isdigit() or character in OPENING_MARKS + "–—"


def _word_before(text: str, end: int, block_start: int) -> str:
    """Return the word that ends at `end`, without opening quotes and elided articles."""
    start = end
    while start > block_start and not text[start - 1].isspace():
        start -= 1
    word = text[start:end].lstrip(OPENING_MARKS)
    # "dell'art." and "all'on." glue an elided article onto the abbreviation.
    return ELISION.split(word)[-1]


def _is_abbreviation(word: str, next_character: str) -> bool:
    """Check whether `word`, which ends with a full stop, is an abbreviation or an initial."""
    lowered = word.lower()
    if lowered in ABBREVIATIONS or DOTTED_ACRONYM.fullmatch(lowered):
        return True
    if lowered in MONTHS:
        return next_character.isdigit()
    # An initial, as in "V. Putin" or "J. R. R. Tolkien". Lowercase one-letter words such as
    # "è" do end sentences.
    return len(word) == 2 and word[0].isupper() and next_character.isupper()


def _strip_span(text: str, start: int, end: int) -> tuple[int, int]:
    """Shrink text[start:end] until it neither starts nor ends with whitespace."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
