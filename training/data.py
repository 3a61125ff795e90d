"""Read, check and summarise the labelled sentences in `labels/`.

`read_splits()` is the one place training code gets data from: a `DatasetDict` with
`train`, `dev` and `test`, the label as a `ClassLabel`. It refuses data that breaks
the schema or leaks between splits. `check_dataset()` adds the checks that need the
rest of `labels/` (documents, lexicon, seed articles); `python -m training.data`
(`make data`) runs them all, prints the summary tables and writes them into the
dataset card, `labels/README.md`.

Deliberately left out: models and metrics. Nothing here writes into `labels/` except
the generated block of the dataset card, and only when asked to.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

from classifier.lexicon import Lexicon, LexiconError
from classifier.scoring import LABELS
from classifier.text import text_problem

ROOT = Path(__file__).resolve().parents[1]
LABELS_DIR = ROOT / "labels"
SENTENCES_PATH = LABELS_DIR / "sentences.jsonl"
DOCUMENTS_PATH = LABELS_DIR / "documents.tsv"
LEXICON_PATH = LABELS_DIR / "lexicon.tsv"
CARD_PATH = LABELS_DIR / "README.md"
SEEDS_DIR = ROOT / "seeds"

FIELDS = ("id", "text", "label", "split", "doc", "source", "terms")
SPLITS = ("train", "dev", "test")
DOCUMENT_FIELDS = ("doc", "genre", "regime", "topic", "story", "layer")
GENRES = (
    "wire", "report", "liveblog", "explainer", "aggregator", "opinion", "transcript", "social",
    "dispatch", "bulletin", "blog", "factcheck",
)  # fmt: skip
# `authored`: the first, short documents written for the project; `realistic`: whole
# pieces at real prevalence and register (evaluated on their own as well); `seed`: the
# real articles in seeds/; `annotated`: real sentences labelled in Label Studio
# (`training.annotations`).
LAYERS = ("authored", "realistic", "seed", "annotated")
REGIMES = (
    "russia", "north_korea", "china", "iran", "belarus", "syria", "venezuela",
    "nicaragua", "cuba", "myanmar", "eritrea", "azerbaijan", "none",
)  # fmt: skip
# Cosine similarity of character 3-5-gram TF-IDF vectors above which two sentences
# count as near-duplicates: a sentence with one or two words swapped scores ~0.85,
# two different sentences on the same story rarely pass 0.6.
NEAR_DUPLICATE_SIMILARITY = 0.8
# Sentences per document the checker expects, by layer: the first layer's documents are
# short by design; realistic ones are whole pieces; seed articles are what they are.
DOCUMENT_SIZES = {"authored": (3, 15), "realistic": (6, 40)}
SLUG = re.compile(r"[a-z0-9][a-z0-9.-]*")
CARD_START = "<!-- summary:start (written by `make data`; do not edit by hand) -->"
CARD_END = "<!-- summary:end -->"
QUOTE_MARKS = re.compile(r"[\"«»“”„]|(?<!\w)'[^']{2,}'(?!\w)|(?<!\w)‘[^’]{2,}’")
LITERAL_TRIGGERS = re.compile(r"\b(nazis\w*|propagand\w*|liberazion\w*|operazion\w*)\b", re.I)


class ConfigError(ValueError):
    """A training option has a value that cannot work; the message says which and why."""


class DataError(ValueError):
    """The labelled data breaks the contract; `problems` lists every finding."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        super().__init__(f"{len(problems)} problem(s) in the labelled data:\n  {shown}{more}")


@dataclass
class DataConfig:
    labels: Path = field(default=SENTENCES_PATH, metadata={"help": "labelled sentences (JSONL)"})
    lexicon: Path = field(default=LEXICON_PATH, metadata={"help": "lexicon shipped with the model"})

    def __post_init__(self):
        self.labels, self.lexicon = Path(self.labels), Path(self.lexicon)
        for name in ("labels", "lexicon"):
            if not getattr(self, name).is_file():
                raise ConfigError(
                    f"--{name}: expected an existing file, found {getattr(self, name)}"
                )
        try:
            Lexicon.read(self.lexicon)
        except LexiconError as error:
            raise ConfigError(f"--lexicon: {error}") from None


@dataclass
class CheckReport:
    sentences: list[dict]
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    documents: dict[str, dict] = field(default_factory=dict)
    lexicon: Lexicon | None = None
    near_duplicates: list[tuple[int, int, float]] = field(default_factory=list)


def read_sentences(path: Path = SENTENCES_PATH) -> CheckReport:
    """Parse the JSON lines and check every row against the schema, one by one."""
    path = Path(path)
    if not path.is_file():
        raise DataError([f"{path}: file not found"])
    report = CheckReport(sentences=[])
    seen_ids: dict[str, int] = {}
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
            where = f"{path.name}:{number}"
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as error:
                report.errors.append(
                    f"{where}: expected a JSON object, found invalid JSON ({error})"
                )
                continue
            if not isinstance(row, dict):
                report.errors.append(f"{where}: expected a JSON object, found {type(row).__name__}")
                continue
            problems = check_row(row)
            report.errors.extend(f"{where}: {problem}" for problem in problems)
            if problems:
                continue
            if row["id"] in seen_ids:
                report.errors.append(
                    f"{where}: expected a unique id, found {row['id']!r} again "
                    f"(first on line {seen_ids[row['id']]})"
                )
                continue
            seen_ids[row["id"]] = number
            report.sentences.append({**row, "line": number})
    if not report.sentences and not report.errors:
        report.errors.append(f"{path.name}: expected labelled sentences, found none")
    report.near_duplicates = find_near_duplicates([row["text"] for row in report.sentences])
    report.errors.extend(check_splits(report.sentences, report.near_duplicates))
    return report


def check_row(row: dict) -> list[str]:
    """Everything one row must satisfy on its own; each message says expected and found."""
    missing = [name for name in FIELDS if name not in row]
    extra = sorted(set(row) - set(FIELDS))
    problems = []
    if missing:
        problems.append(f"expected fields {list(FIELDS)}, missing {missing}")
    if extra:
        problems.append(f"expected only fields {list(FIELDS)}, found extra {extra}")
    if missing:
        return problems
    for name in ("id", "text", "doc", "source"):
        if not isinstance(row[name], str):
            problems.append(f"expected {name} to be a string, found {row[name]!r}")
    if problems:
        return problems
    text = row["text"]
    if problem := text_problem(text):
        problems.append(f"text: {problem}")
    elif text != text.strip():
        problems.append("expected text without leading or trailing whitespace")
    if not row["id"].strip() or not row["doc"].strip():
        problems.append("expected non-empty id and doc")
    if row["label"] not in LABELS:
        problems.append(f"expected label in {list(LABELS)}, found {row['label']!r}")
    if row["split"] not in SPLITS:
        problems.append(f"expected split in {list(SPLITS)}, found {row['split']!r}")
    if row["source"] != "authored" and not row["source"].startswith(("seed:", "annotated:")):
        problems.append(
            "expected source 'authored', 'seed:<file>' or 'annotated:<export>', found "
            f"{row['source']!r}"
        )
    terms = row["terms"]
    if not isinstance(terms, list) or not all(isinstance(term, str) for term in terms):
        problems.append(f"expected terms to be a list of strings, found {terms!r}")
        return problems
    for term in terms:
        if not term.strip() or term not in text:
            problems.append(f"expected each term to occur in the text, found {term!r} absent")
    if row["label"] in ("quoted", "adopted") and not terms:
        problems.append(f"expected at least one term for a {row['label']} sentence, found none")
    if row["label"] == "neutral" and terms:
        problems.append(f"expected no terms for a neutral sentence, found {terms}")
    return problems


def check_splits(sentences: list[dict], near_duplicates: list[tuple[int, int, float]]) -> list[str]:
    """No document, identical sentence or near-identical sentence in two splits."""
    problems = []
    splits_of_doc = collections.defaultdict(set)
    for row in sentences:
        splits_of_doc[row["doc"]].add(row["split"])
    for doc, splits in sorted(splits_of_doc.items()):
        if len(splits) > 1:
            problems.append(f"document {doc!r}: expected one split, found {sorted(splits)}")
    first_seen: dict[str, dict] = {}
    for row in sentences:
        key = normalise(row["text"])
        other = first_seen.setdefault(key, row)
        if other is not row and other["split"] != row["split"]:
            problems.append(
                f"{row['id']} (line {row['line']}, {row['split']}): expected no identical sentence "
                f"in another split, found {other['id']} (line {other['line']}, {other['split']})"
            )
    for i, j, similarity in near_duplicates:
        a, b = sentences[i], sentences[j]
        if a["split"] != b["split"] and normalise(a["text"]) != normalise(b["text"]):
            problems.append(
                f"{b['id']} (line {b['line']}, {b['split']}): expected no near-duplicate in "
                f"another split, found {a['id']} (line {a['line']}, {a['split']}), "
                f"similarity {similarity:.2f}"
            )
    return problems


def normalise(text: str) -> str:
    text = re.sub(r"[’ʼ‘`]", "'", text.casefold())
    text = re.sub(r"[«»“”„\"]", '"', text)
    return " ".join(text.split())


def find_near_duplicates(
    texts: list[str], threshold: float = NEAR_DUPLICATE_SIMILARITY
) -> list[tuple[int, int, float]]:
    """Pairs (i, j, similarity), i < j, of texts whose character n-grams nearly coincide."""
    if len(texts) < 2:
        return []
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5)).fit_transform(
        [normalise(text) for text in texts]
    )
    similarity = (vectors @ vectors.T).toarray()
    pairs = np.argwhere(np.triu(similarity, k=1) >= threshold)
    return [(int(i), int(j), float(similarity[i, j])) for i, j in pairs]


def read_documents(path: Path = DOCUMENTS_PATH) -> tuple[dict[str, dict], list[str]]:
    """The per-document facts (genre, regime, topic, story, layer) from `documents.tsv`."""
    documents, problems = {}, []
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    if not lines or tuple(lines[0].split("\t")) != DOCUMENT_FIELDS:
        found = lines[0] if lines else "an empty file"
        return {}, [f"{Path(path).name}:1: expected header {DOCUMENT_FIELDS}, found {found!r}"]
    for number, line in enumerate(lines[1:], start=2):
        where = f"{Path(path).name}:{number}"
        values = line.split("\t")
        if len(values) != len(DOCUMENT_FIELDS):
            problems.append(f"{where}: expected {len(DOCUMENT_FIELDS)} fields, found {len(values)}")
            continue
        row = dict(zip(DOCUMENT_FIELDS, values, strict=True))
        for name, allowed in (("genre", GENRES), ("regime", REGIMES), ("layer", LAYERS)):
            if row[name] not in allowed:
                problems.append(f"{where}: expected {name} in {list(allowed)}, found {row[name]!r}")
        if not SLUG.fullmatch(row["story"]):
            problems.append(f"{where}: expected story as a lowercase slug, found {row['story']!r}")
        if row["doc"] in documents:
            problems.append(f"{where}: expected a unique doc, found {row['doc']!r} again")
        documents[row["doc"]] = row
    return documents, problems


def check_stories(sentences: list[dict], documents: dict[str, dict]) -> list[str]:
    """No story (one event, however many documents retell it) in two splits."""
    splits_of_story = collections.defaultdict(set)
    for row in sentences:
        if row["doc"] in documents:
            splits_of_story[documents[row["doc"]]["story"]].add(row["split"])
    return [
        f"story {story!r}: expected one split, found {sorted(splits)}"
        for story, splits in sorted(splits_of_story.items())
        if len(splits) > 1
    ]


def check_dataset(
    sentences_path: Path = SENTENCES_PATH,
    documents_path: Path = DOCUMENTS_PATH,
    lexicon_path: Path = LEXICON_PATH,
    seeds_dir: Path = SEEDS_DIR,
    *,
    limits: bool = True,
) -> CheckReport:
    """All checks: the rows, the splits, the documents table, the seeds and the lexicon.

    `limits` also holds the data to the shortcut limits (`SHORTCUT_LIMITS`): they describe
    a whole dataset, so a small test fixture is checked without them.
    """
    report = read_sentences(sentences_path)
    report.documents, problems = read_documents(documents_path)
    report.errors.extend(problems)
    for doc in sorted({row["doc"] for row in report.sentences} - set(report.documents)):
        report.errors.append(f"document {doc!r}: expected a row in {Path(documents_path).name}")
    report.errors.extend(check_stories(report.sentences, report.documents))
    for row in report.sentences:
        where = f"{Path(sentences_path).name}:{row['line']}"
        layer = report.documents.get(row["doc"], {}).get("layer")
        if row["source"].startswith("seed:"):
            name = row["source"].removeprefix("seed:")
            if not (Path(seeds_dir) / name).is_file():
                report.errors.append(f"{where}: expected seed file {name!r} in seeds/, not found")
            if row["doc"] != name or row["split"] != "test":
                report.errors.append(
                    f"{where}: expected a seed sentence with doc {name!r} in test, "
                    f"found doc {row['doc']!r} in {row['split']}"
                )
        if layer and (layer == "seed") != row["source"].startswith("seed:"):
            report.errors.append(
                f"{where}: expected layer 'seed' exactly for seed sentences, found layer "
                f"{layer!r} for source {row['source']!r}"
            )
    sizes = collections.Counter(row["doc"] for row in report.sentences)
    for doc, size in sorted(sizes.items()):
        low, high = DOCUMENT_SIZES.get(report.documents.get(doc, {}).get("layer"), (1, 10**6))
        if not low <= size <= high:
            report.warnings.append(
                f"document {doc!r}: expected {low}-{high} sentences, found {size}"
            )
    for i, j, similarity in report.near_duplicates:
        a, b = report.sentences[i], report.sentences[j]
        if a["split"] == b["split"]:
            report.warnings.append(
                f"{b['id']} and {a['id']} (both {a['split']}) are near-duplicates "
                f"({similarity:.2f}): re-read them"
            )
    lexicon = Lexicon.read(lexicon_path)
    unmatched = collections.Counter()
    for row in report.sentences:
        row["spans"] = lexicon.find(row["text"])
        if row["label"] == "neutral":
            for span in row["spans"]:
                report.warnings.append(
                    f"{row['id']} (line {row['line']}) is neutral but contains the lexicon term "
                    f"{row['text'][span.start : span.end]!r}: re-read it"
                )
        unmatched.update(normalise(term) for term in row["terms"] if not lexicon.find(term))
    for term, (neutral, total) in sorted(lexicon_neutral_counts(report.sentences).items()):
        if neutral >= LEXICON_REVIEW_COUNT and neutral / total >= LEXICON_REVIEW_SHARE:
            report.warnings.append(
                f"lexicon entry {term!r} matches {neutral} neutral sentences of {total}: review "
                "whether it is mostly ordinary Italian"
            )
    if unmatched:
        # One line, not hundreds: a missing lexicon row is a to-do, not a labelling error.
        common = ", ".join(f"{term!r} ({count})" for term, count in unmatched.most_common(8))
        report.warnings.append(
            f"{sum(unmatched.values())} term occurrences ({len(unmatched)} distinct) are not in "
            f"the lexicon; most frequent: {common}"
        )
    report.lexicon = lexicon
    if limits and not report.errors:
        report.errors.extend(shortcut_problems(measure_shortcuts(report)))
    return report


# --- Shortcuts: surface cues that must not decide the label ------------------------------
# Each pattern is a cue a model could learn instead of reading the sentence; the card
# reports how often it occurs per label, and `SHORTCUT_LIMITS` fails the check when the
# data slides back towards a cue deciding the label. Patterns find a lower bound.
ATTRIBUTION = re.compile(
    r"\b(?:secondo|stando a|a detta d\w*|dice|dicono|diceva|detto|dichiar(?:a|ano|ato|ata|ando)"
    r"|afferm(?:a|ano|ato|ata|ando)|sostien[ei]|sostengono|sostenuto"
    r"|defin(?:isce|iscono|ito|ita|iti|ite|endo|ire)|chiam(?:a|ano|ato|ata|ando)"
    r"|parl(?:a|ano|ato|ando) di|descri(?:ve|vono|tto|tta|vendo)|aggiung(?:e|ono|endo)|aggiunto"
    r"|spieg(?:a|ano|ato|ando)|sottoline(?:a|ano|ato|ando)|ribad(?:isce|iscono|ito|endo)"
    r"|annunci(?:a|ano|ato|ando)|accus(?:a|ano|ato|ando)|denunci(?:a|ano|ato|ando)"
    r"|precis(?:a|ano|ato|ando)|scrive|scrivono|scritto|riferisc(?:e|ono)|riferito|riferita"
    r"|riport(?:a|ano|ato|ata|ando)|conferm(?:a|ano|ato|ando)|assicur(?:a|ano|ato)"
    r"|avvert(?:e|ono|ito)|ammett(?:e|ono)|ammesso|rivendic(?:a|ano|ato)|fa sapere|fanno sapere"
    r"|fatto sapere|cit(?:a|ano|ato|ata|ando)|comment(?:a|ano|ato)|osserv(?:a|ano|ato)"
    r"|ricord(?:a|ano|ato))\b",
    re.I,
)
# Words of ordinary newsroom Italian that the first layer used almost only in propaganda.
ORDINARY_WORDS = {
    "golpe": re.compile(r"\bgolp(?:e|i|ista|isti)\b", re.I),
    "sovranità": re.compile(r"\bsovranità\b", re.I),
    "Occidente": re.compile(r"\boccidente\b", re.I),
    "terroris*": re.compile(r"\bterroris\w*", re.I),
    "Donbass": re.compile(r"\bdonbass\b", re.I),
    "popolo": re.compile(r"\bpopol[oi]\b", re.I),
    "Kiev": re.compile(r"\bkiev\b", re.I),
}
STATE_SOURCE = re.compile(
    r"\b(?:tass|ria novosti|sputnik|rt|kcna|kctv|rodong sinmun|xinhua|cgtn|global times"
    r"|quotidiano del popolo|irna|press tv|pars ?today|tasnim|fars|belta|sana|prensa latina"
    r"|telesur|granma|media (?:statali|di stato|ufficiali)"
    r"|agenzia (?:di stampa )?(?:ufficiale|statale)|tv di stato|televisione (?:di stato|statale)"
    r"|emittente (?:di stato|statale))\b",
    re.I,
)
SPEAKER_TAG = re.compile(r"^[A-ZÀ-Ý][A-ZÀ-Ý'’. ]{1,40}:\s")
TRAILING_ATTRIBUTION = re.compile(
    r",\s*(?:(?:ha|hanno)\s+)?(?:riferisc\w*|riferit\w*|scrive|scrivono|riport\w*|dett\w"
    r"|dichiarat\w|aggiunt\w|spiegat\w|precisat\w|fatto sapere|fa sapere|secondo\b|stando a"
    r"|conferm\w*|annunciat\w|sottolineat\w|ribadit\w|sostenut\w|afferm\w*)[^,;]*$",
    re.I,
)
# Genres whose writer is a newsroom, not a state agency or a partisan voice.
NEWSROOM_GENRES = ("wire", "report", "liveblog", "explainer", "aggregator", "transcript")
# Sentences that contradict a shortcut, counted in the realistic layer.
COUNTER_EXAMPLES = {
    "neutral, citing state media as a source": lambda r, doc: (
        r["label"] == "neutral" and bool(STATE_SOURCE.search(r["text"]))
    ),
    "attribution after the claim": lambda r, doc: bool(
        TRAILING_ATTRIBUTION.search(r["text"].rstrip(".!?»”\"' "))
    ),
    "adopted in a newsroom genre": lambda r, doc: (
        r["label"] == "adopted" and doc.get("genre") in NEWSROOM_GENRES
    ),
    "adopted with a speaker tag": lambda r, doc: (
        r["label"] == "adopted" and bool(SPEAKER_TAG.match(r["text"]))
    ),
    "neutral in a state dispatch or bulletin": lambda r, doc: (
        r["label"] == "neutral" and doc.get("genre") in ("dispatch", "bulletin")
    ),
    "neutral with quotation marks or cosiddetto": lambda r, doc: (
        r["label"] == "neutral"
        and bool(QUOTE_MARKS.search(r["text"]) or re.search(r"\bcosiddett", r["text"], re.I))
    ),
    "quoted without quotation marks": lambda r, doc: (
        r["label"] == "quoted" and not QUOTE_MARKS.search(r["text"])
    ),
}
LONG_SENTENCE = 25  # words; 42% of real neutral news sentences reach it
# A lexicon entry is flagged for review when this many neutral sentences match it, and at
# least this share of all the sentences it matches: it may be ordinary Italian.
LEXICON_REVIEW_COUNT = 3
LEXICON_REVIEW_SHARE = 0.25
SHORTCUT_LIMITS = {
    "min_neutral_share": 0.62,
    "min_ordinary_word_count": 25,
    "min_ordinary_word_neutral_share": 0.40,
    "min_quote_marks_neutral": 0.15,
    "min_quote_marks_adopted": 0.10,
    "min_attribution_neutral": 0.20,
    "min_mean_words": 22,
    "max_mean_words_gap": 4,
    "min_typographic_apostrophe": 0.20,
    "min_realistic_sentences": 3000,
    "min_realistic_documents": 150,
    "min_realistic_neutral_share": 0.80,
    "min_counter_examples": 60,
}


def measure_shortcuts(report: CheckReport) -> dict:
    """The shortcut measures of a checked dataset, as plain numbers (see `SHORTCUT_LIMITS`)."""
    rows, docs = report.sentences, report.documents
    cues = {
        "quote marks": lambda r: bool(QUOTE_MARKS.search(r["text"])),
        "attribution verb": lambda r: bool(ATTRIBUTION.search(r["text"])),
        "lexicon term": lambda r: bool(r.get("spans")),  # found by check_dataset
        f"{LONG_SENTENCE}+ words": lambda r: len(r["text"].split()) >= LONG_SENTENCE,
        "’ apostrophe": lambda r: "’" in r["text"],
    }
    per_label = {}
    for label in LABELS:
        chosen = [r for r in rows if r["label"] == label]
        n = max(len(chosen), 1)
        per_label[label] = {
            "sentences": len(chosen),
            "mean words": statistics.mean(len(r["text"].split()) for r in chosen) if chosen else 0,
            **{cue: sum(map(test, chosen)) / n for cue, test in cues.items()},
        }
    ordinary = {}
    for word, pattern in ORDINARY_WORDS.items():
        found = [r for r in rows if pattern.search(r["text"])]
        neutral = sum(r["label"] == "neutral" for r in found)
        ordinary[word] = {"count": len(found), "neutral share": neutral / max(len(found), 1)}
    # How well genre alone tells quoted from adopted: the majority label of each genre.
    propaganda = [r for r in rows if r["label"] != "neutral"]
    by_genre = collections.Counter(
        (docs.get(r["doc"], {}).get("genre"), r["label"]) for r in propaganda
    )
    genres = {genre for genre, _ in by_genre}
    majority = sum(max(by_genre[(g, "quoted")], by_genre[(g, "adopted")]) for g in genres)
    realistic = [r for r in rows if docs.get(r["doc"], {}).get("layer") == "realistic"]
    return {
        "sentences": len(rows),
        "neutral share": sum(r["label"] == "neutral" for r in rows) / max(len(rows), 1),
        "’ apostrophe": sum("’" in r["text"] for r in rows) / max(len(rows), 1),
        "per label": per_label,
        "ordinary words": ordinary,
        "genre separates quoted from adopted": majority / max(len(propaganda), 1),
        "realistic sentences": len(realistic),
        "realistic documents": len({r["doc"] for r in realistic}),
        "realistic neutral share": (
            sum(r["label"] == "neutral" for r in realistic) / max(len(realistic), 1)
        ),
        "counter-examples": {
            name: sum(bool(test(r, docs[r["doc"]])) for r in realistic)
            for name, test in COUNTER_EXAMPLES.items()
        },
    }


def shortcut_problems(measures: dict, limits: dict = SHORTCUT_LIMITS) -> list[str]:
    """One message per limit the measures break, saying expected and found."""
    problems = []

    def need(ok: bool, what: str, expected: str, found: float | int) -> None:
        if not ok:
            shown = f"{found:.1%}" if isinstance(found, float) and found <= 1 else f"{found:g}"
            problems.append(f"shortcut limit: expected {what} {expected}, found {shown}")

    per_label = measures["per label"]
    share = limits["min_neutral_share"]
    need(measures["neutral share"] >= share, "a neutral share of at least", f"{share:.0%}",
         measures["neutral share"])  # fmt: skip
    for word, figures in measures["ordinary words"].items():
        need(figures["count"] >= limits["min_ordinary_word_count"], f"{word!r} at least",
             f"{limits['min_ordinary_word_count']} times", figures["count"])  # fmt: skip
        low = limits["min_ordinary_word_neutral_share"]
        need(figures["neutral share"] >= low, f"{word!r} neutral in at least", f"{low:.0%}",
             figures["neutral share"])  # fmt: skip
    for label, cue, key in (
        ("neutral", "quote marks", "min_quote_marks_neutral"),
        ("adopted", "quote marks", "min_quote_marks_adopted"),
        ("neutral", "attribution verb", "min_attribution_neutral"),
    ):
        need(per_label[label][cue] >= limits[key], f"{cue} in at least",
             f"{limits[key]:.0%} of {label} sentences", per_label[label][cue])  # fmt: skip
    means = {label: figures["mean words"] for label, figures in per_label.items()}
    for label, mean in means.items():
        need(mean >= limits["min_mean_words"], f"{label} sentences of at least",
             f"{limits['min_mean_words']} words on average", round(mean, 1))  # fmt: skip
    gap = max(means.values()) - min(means.values())
    need(gap <= limits["max_mean_words_gap"], "per-label mean lengths within",
         f"{limits['max_mean_words_gap']} words", round(gap, 1))  # fmt: skip
    low = limits["min_typographic_apostrophe"]
    need(measures["’ apostrophe"] >= low, "’ in at least", f"{low:.0%} of sentences",
         measures["’ apostrophe"])  # fmt: skip
    need(measures["realistic sentences"] >= limits["min_realistic_sentences"],
         "a realistic layer of at least", f"{limits['min_realistic_sentences']} sentences",
         measures["realistic sentences"])  # fmt: skip
    need(measures["realistic documents"] >= limits["min_realistic_documents"],
         "a realistic layer of at least", f"{limits['min_realistic_documents']} documents",
         measures["realistic documents"])  # fmt: skip
    low = limits["min_realistic_neutral_share"]
    need(measures["realistic neutral share"] >= low, "a realistic layer at least",
         f"{low:.0%} neutral", measures["realistic neutral share"])  # fmt: skip
    for name, count in measures["counter-examples"].items():
        need(count >= limits["min_counter_examples"], f"at least {limits['min_counter_examples']}",
             f"realistic sentences '{name}'", count)  # fmt: skip
    return problems


def shortcut_tables(measures: dict) -> str:
    """The shortcut measures as the dataset card's Markdown tables."""
    per_label = measures["per label"]
    cues = [
        name for name in next(iter(per_label.values())) if name not in ("sentences", "mean words")
    ]
    lines = [
        "| label | sentences | mean words | " + " | ".join(cues) + " |",
        "|---" * (len(cues) + 3) + "|",
    ]
    for label, figures in per_label.items():
        lines.append(
            f"| {label} | {figures['sentences']} | {figures['mean words']:.1f} | "
            + " | ".join(f"{figures[cue]:.0%}" for cue in cues)
            + " |"
        )
    lines += ["", "| ordinary word | sentences | neutral share |", "|---|---|---|"]
    for word, figures in measures["ordinary words"].items():
        lines.append(f"| {word} | {figures['count']} | {figures['neutral share']:.0%} |")
    lines += [
        "",
        f"Neutral share {measures['neutral share']:.1%}; ’ in {measures['’ apostrophe']:.1%} of "
        f"sentences; genre alone tells quoted from adopted for "
        f"{measures['genre separates quoted from adopted']:.0%} of the propaganda sentences.",
        "",
        f"Realistic layer: {measures['realistic sentences']} sentences in "
        f"{measures['realistic documents']} documents, "
        f"{measures['realistic neutral share']:.1%} neutral. Counter-examples to the shortcuts "
        "in it:",
        "",
        "| counter-example | sentences |",
        "|---|---|",
        *(f"| {name} | {count} |" for name, count in measures["counter-examples"].items()),
    ]
    return "\n".join(lines)


def lexicon_neutral_counts(rows: list[dict]) -> dict[str, tuple[int, int]]:
    """For each lexicon entry that matches: (neutral sentences matched, sentences matched)."""
    neutral, total = collections.Counter(), collections.Counter()
    for row in rows:
        for term in {span.term for span in row.get("spans", ())}:
            total[term] += 1
            neutral[term] += row["label"] == "neutral"
    return {term: (neutral[term], total[term]) for term in total}


def read_splits(path: Path = SENTENCES_PATH):
    """The labelled sentences as a `datasets.DatasetDict` (train, dev, test).

    Each row also carries its document's `layer`, read from the `documents.tsv` beside
    `path`, so that evaluation can report the realistic layer on its own.
    """
    from datasets import ClassLabel, Dataset, DatasetDict, Features, Sequence, Value

    report = read_sentences(path)
    documents, problems = read_documents(Path(path).with_name(DOCUMENTS_PATH.name))
    report.errors.extend(problems)
    for doc in sorted({row["doc"] for row in report.sentences} - set(documents)):
        report.errors.append(f"document {doc!r}: expected a row in {DOCUMENTS_PATH.name}")
    report.errors.extend(check_stories(report.sentences, documents))
    empty = [split for split in SPLITS if not any(r["split"] == split for r in report.sentences)]
    if empty:
        report.errors.append(
            f"{Path(path).name}: expected sentences in every split, none in {empty}"
        )
    if report.errors:
        raise DataError(report.errors)
    features = Features(
        {
            "id": Value("string"),
            "text": Value("string"),
            "label": ClassLabel(names=list(LABELS)),
            "doc": Value("string"),
            "source": Value("string"),
            "terms": Sequence(Value("string")),
            "layer": ClassLabel(names=list(LAYERS)),
        }
    )
    columns = list(features)
    return DatasetDict(
        {
            split: Dataset.from_list(
                [
                    {
                        **{name: row.get(name) for name in columns},
                        "layer": documents[row["doc"]]["layer"],
                    }
                    for row in report.sentences
                    if row["split"] == split
                ],
                features=features,
            )
            for split in SPLITS
        }
    )


def summary_tables(report: CheckReport) -> str:
    """The dataset card's tables, as Markdown, computed from the data."""
    rows = report.sentences
    docs = report.documents

    def crosstab(title: str, key) -> str:
        counts = collections.Counter((key(row), row["label"]) for row in rows)
        keys = sorted({k for k, _ in counts})
        lines = [
            f"| {title} | " + " | ".join(LABELS) + " | total |",
            "|---" * (len(LABELS) + 2) + "|",
        ]
        for k in keys:
            values = [counts[(k, label)] for label in LABELS]
            lines.append(f"| {k} | " + " | ".join(map(str, values)) + f" | {sum(values)} |")
        totals = [sum(counts[(k, label)] for k in keys) for label in LABELS]
        lines.append("| **total** | " + " | ".join(map(str, totals)) + f" | {sum(totals)} |")
        return "\n".join(lines)

    def meta(row, name):
        return docs.get(row["doc"], {}).get(name, "?")

    words = [len(row["text"].split()) for row in rows]
    doc_splits = collections.Counter({r["doc"]: r["split"] for r in rows}.values())
    hard = hard_case_counts(rows)
    terms = [term for row in rows for term in row["terms"]]
    coverage = ""
    if report.lexicon is not None and terms:
        matched = sum(bool(report.lexicon.find(term)) for term in terms)
        coverage = (
            f" The lexicon ({len(report.lexicon)} terms) matches {matched} of the "
            f"{len(terms)} annotated term occurrences ({matched / len(terms):.0%})."
        )
    lines = [
        f"{len(rows)} sentences in {len({r['doc'] for r in rows})} documents "
        f"({doc_splits['train']} train, {doc_splits['dev']} dev, {doc_splits['test']} test); "
        f"{sum(r['source'] != 'authored' for r in rows)} from the seed articles.{coverage}",
        "",
        "### Labels by split",
        crosstab("split", lambda r: r["split"]),
        "",
        "### Labels by layer and split",
        crosstab("layer / split", lambda r: f"{meta(r, 'layer')} / {r['split']}"),
        "",
        "### Labels by regime",
        crosstab("regime", lambda r: meta(r, "regime")),
        "",
        "### Labels by genre",
        crosstab("genre", lambda r: meta(r, "genre")),
        "",
        "### Labels by topic",
        crosstab("topic", lambda r: meta(r, "topic")),
        "",
        "### Sentence length (words)",
        f"min {min(words)}, median {statistics.median(words):g}, max {max(words)}; "
        f"{sum(w < 10 for w in words)} under 10 words, {sum(w > 40 for w in words)} over 40.",
        "",
        "### Hard cases (found by pattern, so a lower bound of what a reader would count)",
        "| pattern | sentences |",
        "|---|---|",
        *(f"| {name} | {count} |" for name, count in hard.items()),
        "",
        "### Shortcuts (the limits they must hold are listed above the summary)",
        shortcut_tables(measure_shortcuts(report)),
        "",
        "### Lexicon entries that match neutral sentences",
        lexicon_table(report),
    ]
    return "\n".join(lines)


def lexicon_table(report: CheckReport) -> str:
    """How often each lexicon entry matches neutral sentences, and the lexicon's coverage."""
    rows = report.sentences
    counts = lexicon_neutral_counts(rows)
    flagged = [(term, neutral, total) for term, (neutral, total) in counts.items() if neutral]
    flagged.sort(key=lambda item: (-item[1], item[0]))
    coverage = {
        label: sum(bool(r.get("spans")) for r in rows if r["label"] == label)
        / max(sum(r["label"] == label for r in rows), 1)
        for label in LABELS
    }
    lines = [
        f"{len(counts)} of {len(report.lexicon or ())} entries match the data. Sentences with "
        "a lexicon match: "
        + ", ".join(f"{coverage[label]:.1%} of {label}" for label in LABELS)
        + f". Entries are flagged for review at {LEXICON_REVIEW_COUNT}+ neutral matches that "
        f"are {LEXICON_REVIEW_SHARE:.0%}+ of their matches.",
        "",
        "| entry | neutral sentences | all sentences matched |",
        "|---|---|---|",
        *(f"| {term} | {neutral} | {total} |" for term, neutral, total in flagged[:20]),
    ]
    if not flagged:
        lines.append("| (none) | 0 | 0 |")
    return "\n".join(lines)


def hard_case_counts(rows: list[dict]) -> dict[str, int]:
    patterns = {
        "neutral with quotation marks": lambda r: (
            r["label"] == "neutral" and bool(QUOTE_MARKS.search(r["text"]))
        ),
        "neutral with nazismo / propaganda / liberazione / operazione": lambda r: (
            r["label"] == "neutral" and bool(LITERAL_TRIGGERS.search(r["text"]))
        ),
        "quoted by attribution only (no quotation marks)": lambda r: (
            r["label"] == "quoted" and not QUOTE_MARKS.search(r["text"])
        ),
        "adopted in a long sentence (35+ words)": lambda r: (
            r["label"] == "adopted" and len(r["text"].split()) >= 35
        ),
        "adopted with quotation marks (distanced and undistanced)": lambda r: (
            r["label"] == "adopted" and bool(QUOTE_MARKS.search(r["text"]))
        ),
    }
    counts = {name: sum(map(test, rows)) for name, test in patterns.items()}
    hard = sum(any(test(r) for test in patterns.values()) for r in rows)
    counts[f"**any of these** (share of all: {hard / max(len(rows), 1):.0%})"] = hard
    return counts


def replace_block(path: Path, start: str, end: str, text: str) -> None:
    """Put `text` between the marker lines `start` and `end` of a generated block
    (the dataset card's tables, the README's results and benchmark)."""
    content = Path(path).read_text(encoding="utf-8")
    if start not in content or end not in content:
        raise DataError([f"{path}: expected the markers {start!r} and {end!r}"])
    head, rest = content.split(start, 1)
    _, tail = rest.split(end, 1)
    Path(path).write_text(f"{head}{start}\n{text}\n{end}{tail}", encoding="utf-8")


def write_card(tables: str, card_path: Path = CARD_PATH) -> None:
    replace_block(card_path, CARD_START, CARD_END, tables)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.data",
        description="Check labels/ and summarise it. `python -m training.data "
        "import-annotations --help` brings a Label Studio export into labels/.",
    )
    parser.add_argument("--sentences", type=Path, default=SENTENCES_PATH)
    parser.add_argument("--documents", type=Path, default=DOCUMENTS_PATH)
    parser.add_argument("--lexicon", type=Path, default=LEXICON_PATH)
    parser.add_argument("--seeds", type=Path, default=SEEDS_DIR)
    parser.add_argument("--card", type=Path, default=CARD_PATH, help="dataset card to update")
    parser.add_argument("--no-card", action="store_true", help="do not rewrite the dataset card")
    parser.add_argument("--quiet", action="store_true", help="print errors and counts only")
    parser.add_argument(
        "--no-limits",
        action="store_true",
        help="skip the shortcut limits (for a small dataset that is not the project's)",
    )
    args = parser.parse_args(argv)
    try:
        report = check_dataset(
            args.sentences, args.documents, args.lexicon, args.seeds, limits=not args.no_limits
        )
    except (DataError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if not args.quiet:
        for warning in report.warnings:
            print(f"warning: {warning}")
    for error in report.errors:
        print(f"error: {error}", file=sys.stderr)
    if report.errors:
        print(f"{len(report.errors)} error(s), {len(report.warnings)} warning(s)", file=sys.stderr)
        return 1
    tables = summary_tables(report)
    if not args.quiet:
        print(tables)
    if not args.no_card:
        write_card(tables, args.card)
    print(f"OK: {len(report.sentences)} sentences, {len(report.warnings)} warning(s)")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["import-annotations"]:
        # The one command that writes into labels/ lives with its logic; this entry point
        # only hands it the rest of the command line.
        from training.annotations import main as import_main

        sys.exit(import_main(sys.argv[2:]))
    sys.exit(main())
