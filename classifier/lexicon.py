"""Read a lexicon of state-media terms and find its terms in a text.

A lexicon is a UTF-8 TSV file whose first line is exactly

    term<TAB>regime<TAB>neutral<TAB>variants<TAB>kind<TAB>note

`variants` lists the surface forms to match, separated by "|", the term itself among them;
`kind` is one of `KINDS` (a term, a euphemism, a narrative phrase, an honorific, a slogan);
`note` may be empty. All variants are compiled into one regular expression, once per lexicon,
and `Lexicon.find` returns leftmost-longest, non-overlapping matches on word boundaries, as
offsets into the text exactly as given. Matching ignores case, treats the typographic
apostrophes ’ ʼ ‘ as ', lets any run of whitespace, line breaks included, stand for a
single space of a variant, and reads the text normalised (NFC, without soft hyphens or
zero-width characters: `classifier.text`).

`Lexicon.mask` writes a text with each match replaced by `PLACEHOLDER`, one word that
stands for any term: what the baseline's word features read (`classifier.scoring`).

Deliberately left out: stemming and lemmatisation (inflected forms are listed as variants),
fuzzy matching, and any judgement of whether a match is used approvingly or reported.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from classifier.text import normalise_with_offsets

HEADER = "term\tregime\tneutral\tvariants\tkind\tnote"
FIELD_COUNT = len(HEADER.split("\t"))
KINDS = ("term", "euphemism", "narrative phrase", "honorific", "slogan")
HEADER_WITHOUT_KIND = "term\tregime\tneutral\tvariants\tnote"  # the format before `kind`
APOSTROPHE_TABLE = str.maketrans({"’": "'", "ʼ": "'", "‘": "'"})
# The word that stands for any lexicon term in masked text: one token (\w+) that no
# Italian sentence contains.
PLACEHOLDER = "_termine_"
END = ""  # marks, inside the trie of variants, a node where a variant ends


class Span(NamedTuple):
    start: int  # character offsets into the scored text; text[start:end] is the surface form found
    end: int
    term: str  # the canonical lexicon term (first column)


@dataclass(frozen=True)
class LexiconEntry:
    term: str
    regime: str
    neutral: str
    variants: tuple[str, ...]
    note: str
    kind: str = "term"


class LexiconError(ValueError):
    """A lexicon file that does not follow the format; the message says where and why."""


class Lexicon:
    """An immutable set of entries with the regular expression that finds their variants."""

    def __init__(self, entries: Iterable[LexiconEntry]):
        self.entries = tuple(entries)
        self._pattern, self._term_of_key = _compile_variants(self.entries)

    @classmethod
    def read(cls, path: str | Path) -> "Lexicon":
        """Read and validate a lexicon TSV file; raise LexiconError at the first problem."""
        try:
            lines = Path(path).read_text(encoding="utf-8-sig").splitlines()
        except UnicodeDecodeError as error:
            raise LexiconError(f"{path}: expected UTF-8 text, found byte {error.start}") from None
        if not lines or lines[0] not in (HEADER, HEADER_WITHOUT_KIND):
            found = repr(lines[0]) if lines else "an empty file"
            raise LexiconError(f"{path}, line 1: expected the header {HEADER!r}, found {found}")
        entries = []
        locations = []
        for line_number, line in enumerate(lines[1:], start=2):
            if line.strip():
                if lines[0] == HEADER_WITHOUT_KIND:
                    # Models trained before the kind column ship such a lexicon.
                    first, note = line.rsplit("\t", 1) if line.count("\t") == 4 else (line, "")
                    line = f"{first}\tterm\t{note}"
                locations.append(f"{path}, line {line_number}")
                entries.append(_parse_entry(line, locations[-1]))
        _map_variants_to_terms(entries, locations)
        return cls(entries)

    @classmethod
    def from_entries(cls, entries: Iterable[LexiconEntry]) -> "Lexicon":
        return cls(entries)

    def find(self, text: str) -> list[Span]:
        """Return every match of a variant in `text`, sorted by start and never overlapping.

        Matching reads the text as `classifier.text.normalise` gives it (NFC, no soft
        hyphens or zero-width characters), and the spans point back into `text` as given.
        """
        if self._pattern is None:
            return []
        normalised, starts, ends = normalise_with_offsets(text)
        return [
            Span(
                starts[match.start()],
                ends[match.end() - 1],
                self._term_of_key[" ".join(match.group().split())],
            )
            for match in self._pattern.finditer(_fold(normalised))
        ]

    def mask(self, text: str) -> tuple[str, list[int], list[int]]:
        """`text` with every match replaced by `PLACEHOLDER`, and each character's origin.

        Returns (masked, starts, ends): masked[i] comes from text[starts[i]:ends[i]], the
        placeholder's characters from the whole match. `text` is read as `find` reads it.
        """
        pieces, starts, ends = [], [], []
        last = 0
        for span in self.find(text):
            pieces.append(text[last : span.start] + PLACEHOLDER)
            starts.extend(range(last, span.start))
            ends.extend(range(last + 1, span.start + 1))
            starts.extend([span.start] * len(PLACEHOLDER))
            ends.extend([span.end] * len(PLACEHOLDER))
            last = span.end
        pieces.append(text[last:])
        starts.extend(range(last, len(text)))
        ends.extend(range(last + 1, len(text) + 1))
        return "".join(pieces), starts, ends

    def __len__(self) -> int:
        return len(self.entries)

    def __repr__(self) -> str:
        return f"Lexicon({len(self)} entries)"


def _parse_entry(line: str, location: str) -> LexiconEntry:
    """Turn one TSV line into an entry; `location` names the file and line in errors."""
    fields = [field.strip() for field in line.split("\t")]
    if len(fields) != FIELD_COUNT:
        raise LexiconError(
            f"{location}: expected {FIELD_COUNT} tab-separated fields "
            f"(term, regime, neutral, variants, kind, note), found {len(fields)}: {line!r}"
        )
    term, regime, neutral, variants_field, kind, note = fields
    if kind not in KINDS:
        raise LexiconError(f"{location}: expected kind in {list(KINDS)}, found {kind!r}")
    for name, value in (("term", term), ("regime", regime), ("variants", variants_field)):
        if not value:
            raise LexiconError(f"{location}: expected a non-empty {name}, found an empty field")
    variants = tuple(variant.strip() for variant in variants_field.split("|"))
    if not all(variants):
        raise LexiconError(
            f"{location}: expected variants separated by single '|', "
            f"found an empty variant in {variants_field!r}"
        )
    if _key(term) not in {_key(variant) for variant in variants}:
        raise LexiconError(
            f"{location}: expected the term {term!r} among its variants, found {variants_field!r}"
        )
    return LexiconEntry(term, regime, neutral, variants, note, kind)


def _fold(text: str) -> str:
    """Lowercase `text` and unify its apostrophes, one character for one character.

    Matching runs on the folded text, so its offsets must be offsets into the original.
    """
    folded = text.lower()
    if len(folded) != len(text):
        # A few characters, such as "İ", lowercase to two; they are left as they are.
        folded = "".join(
            character.lower() if len(character.lower()) == 1 else character for character in text
        )
    return folded.translate(APOSTROPHE_TABLE)


def _key(variant: str) -> str:
    """Reduce a variant to what matching compares: folded, with single spaces."""
    return " ".join(_fold(variant).split())


def _map_variants_to_terms(
    entries: Sequence[LexiconEntry], locations: Sequence[str]
) -> dict[str, str]:
    """Map the key of every variant to its term; a variant of two terms would be ambiguous."""
    term_of_key: dict[str, str] = {}
    for entry, location in zip(entries, locations, strict=True):
        for variant in entry.variants:
            other_term = term_of_key.setdefault(_key(variant), entry.term)
            if other_term != entry.term:
                raise LexiconError(
                    f"{location}: expected each variant to belong to one term, "
                    f"found {variant!r} under both {other_term!r} and {entry.term!r}"
                )
    return term_of_key


def _compile_variants(
    entries: tuple[LexiconEntry, ...],
) -> tuple[re.Pattern | None, dict[str, str]]:
    """Compile all variants into one pattern, and map each variant's key to its term."""
    locations = [f"entry {entry.term!r}" for entry in entries]
    term_of_key = _map_variants_to_terms(entries, locations)
    if not term_of_key:
        return None, {}
    trie: dict = {}
    for key in term_of_key:
        node = trie
        for character in key:
            node = node.setdefault(character, {})
        node[END] = {}
    return re.compile(rf"(?<!\w){_trie_pattern(trie)}(?!\w)"), term_of_key


def _trie_pattern(node: dict) -> str:
    """Write a trie of keys as a regular expression, preferring the longest key.

    A plain alternation of hundreds of variants is tried one variant at a time at every word;
    a trie shares their prefixes, so each character of the text is looked at about once.
    Sibling branches start with different characters, so at most one of them can match, and
    a key that ends where longer keys go on is made optional: greedy `?` tries the longer ones
    first, which gives leftmost-longest matches.
    """
    branches = [
        (r"\s+" if character == " " else re.escape(character)) + _trie_pattern(child)
        for character, child in sorted(node.items())
        if character != END
    ]
    if not branches:
        return ""
    pattern = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
    if END in node:
        return f"(?:{pattern})?"
    return pattern
