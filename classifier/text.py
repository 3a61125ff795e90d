"""The one text check and the one text normalisation, wherever text enters the project.

`text_problem` says what makes a value unusable as a sentence (not a string, blank,
invisible, a lone surrogate), or None; the API, the command line, the pyfunc model and
the data checker all ask it. `normalise` is what both model families and the lexicon
read: Unicode NFC (a decomposed "è" is one character again) with format characters
removed (soft hyphens, zero-width spaces and joiners, byte-order marks: web text is full
of them, and they split words). `normalise_with_offsets` also maps every character of
the result back to the original, so that spans found in normalised text point into the
text exactly as given.

Deliberately left out: case folding, quotation marks and apostrophes (the lexicon folds
those itself; the models see them as written).
"""

from __future__ import annotations

import re
import unicodedata

# Control characters a sentence may carry without being invisible: tab and line breaks.
ALLOWED_CONTROLS = frozenset("\t\n\r")
# The code points of Unicode category Cf (format), as ranges; `tests/test_text.py` checks
# them against this Python's `unicodedata`. Written out, not computed: scanning every code
# point costs a sixth of a second at every start.
FORMAT_RANGES = (
    (0x00AD, 0x00AD), (0x0600, 0x0605), (0x061C, 0x061C), (0x06DD, 0x06DD), (0x070F, 0x070F),
    (0x0890, 0x0891), (0x08E2, 0x08E2), (0x180E, 0x180E), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x2064), (0x2066, 0x206F), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB), (0x110BD, 0x110BD),
    (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0001, 0xE0001), (0xE0020, 0xE007F),
)  # fmt: skip
FORMAT_CHARACTERS = re.compile(
    "[" + "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in FORMAT_RANGES) + "]"
)


def _dropped(character: str) -> bool:
    return FORMAT_CHARACTERS.match(character) is not None


def normalise_with_offsets(text: str) -> tuple[str, list[int], list[int]]:
    """NFC text without format characters, and each of its characters' original span.

    Returns (normalised, starts, ends): normalised[i] comes from text[starts[i]:ends[i]].
    Composition only happens within a base character and the marks after it, so each
    such run is normalised on its own and its characters map to the whole run.
    """
    pieces, starts, ends = [], [], []
    run_start = 0
    for position in range(1, len(text) + 1):
        if position < len(text) and unicodedata.combining(text[position]):
            continue  # a combining mark belongs to the run of the character before it
        run = "".join(c for c in text[run_start:position] if not _dropped(c))
        for character in unicodedata.normalize("NFC", run):
            pieces.append(character)
            starts.append(run_start)
            ends.append(position)
        run_start = position
    return "".join(pieces), starts, ends


def normalise(text: str) -> str:
    """`text` as the models and the lexicon read it (see the module docstring)."""
    if unicodedata.is_normalized("NFC", text) and not FORMAT_CHARACTERS.search(text):
        return text  # nothing to compose or drop: the common case, kept fast
    return normalise_with_offsets(text)[0]


def text_problem(text) -> str | None:
    """Why `text` cannot be scored as a sentence, or None if it can."""
    if not isinstance(text, str):
        return f"expected a string, found {type(text).__name__}"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        # What bytes decoded with errors="surrogateescape" turn into; tokenizers reject it.
        return (
            f"expected valid Unicode, found a lone surrogate {text[error.start]!r} "
            f"at character {error.start}"
        )
    if not text.strip():
        return "expected text, found an empty or blank string"
    visible = [
        c for c in normalise(text)
        if not c.isspace() and (unicodedata.category(c) != "Cc" or c in ALLOWED_CONTROLS)
    ]  # fmt: skip
    if not visible:
        return "expected visible text, found only invisible or control characters"
    return None
