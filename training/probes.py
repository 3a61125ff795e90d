"""Behavioural probes: what a model keys on, measured on transformed held-out sentences.

In the spirit of CheckList (Ribeiro et al., 2020), each probe rewrites the held-out
sentences it applies to (`dev` and `test`, never `train`) and states the label the
rewritten sentence must have: an invariance (a plain attribution to a state agency, a
speaker tag, the style of quotation marks, case and whitespace change nothing) or a
direction (removing the only quotation marks around a term makes it `adopted`; adding
"Secondo la propaganda del Cremlino," or "cosiddetto" makes it `quoted`; putting the
lexicon's neutral wording in place of the only term makes it `neutral`). A probe only
uses sentences the model labels correctly as they are, so a failure is the rewrite's
doing. Every training runs the probes and logs `probe_<name>` (pass rate) and
`probe_<name>_applied` to MLflow, with the failures as an artifact;

    python -m training.probes baseline bert      # or `make probes`

prints the table for registered models. A probe applied to fewer than `MIN_APPLIED`
sentences reports no rate. Nothing generated here is training data: it never goes
into `labels/`.

Deliberately left out: any probe that needs a human to write the rewritten sentence.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from classifier.lexicon import Lexicon
from training.data import ATTRIBUTION, QUOTE_MARKS, SPEAKER_TAG

MIN_APPLIED = 30  # fewer rewritten sentences than this give no rate worth reading
AGENCIES = ("Tass", "Kcna", "Xinhua", "Irna", "BelTA", "Ria Novosti")
SPEAKER_PREFIXES = ("CONDUTTORE: ", "OSPITE: ", "ROMA, 12 marzo – ", "(ANSA) – ")
# Words that, after them, let a sentence's first word lose its capital: "Secondo la
# Tass, il ministro ..." but "Secondo la Tass, Kim ...".
LOWERCASE_STARTS = {
    "il", "lo", "la", "i", "gli", "le", "un", "uno", "una", "l", "in", "nel", "nella", "nei",
    "nelle", "a", "al", "alla", "ai", "alle", "da", "dal", "dalla", "dai", "dopo", "per",
    "con", "su", "sul", "sulla", "tra", "fra", "oggi", "ieri", "domani", "anche", "non",
    "questo", "questa", "questi", "queste", "secondo", "mentre", "come", "quando", "ora",
}  # fmt: skip
# Words that gloss a term as someone else's ("il termine", "la formula ufficiale"): a
# sentence holding one is not distanced by its quotation marks alone.
GLOSSES = re.compile(
    r"\b(?:cosiddett\w*|termin[ei]|parol[ae]|formul[ae]|espression[ei]|definizion[ei]|slogan"
    r"|propagand\w*|narrazion[ei]|retoric\w*|lessico|linguaggio|etichett[ae]|eufemism\w*)\b",
    re.I,
)
QUOTE_PAIRS = (("«", "»"), ("“", "”"), ('"', '"'), ("'", "'"), ("‘", "’"))
# "cosiddetto" agrees with the article before the term: (article, form).
COSIDDETTO = {
    "il": "cosiddetto", "del": "cosiddetto", "al": "cosiddetto", "dal": "cosiddetto",
    "nel": "cosiddetto", "sul": "cosiddetto", "un": "cosiddetto", "la": "cosiddetta",
    "della": "cosiddetta", "alla": "cosiddetta", "dalla": "cosiddetta", "nella": "cosiddetta",
    "sulla": "cosiddetta", "una": "cosiddetta", "i": "cosiddetti", "dei": "cosiddetti",
    "ai": "cosiddetti", "dai": "cosiddetti", "nei": "cosiddetti", "sui": "cosiddetti",
    "le": "cosiddette", "delle": "cosiddette", "alle": "cosiddette", "dalle": "cosiddette",
    "nelle": "cosiddette", "sulle": "cosiddette",
}  # fmt: skip
DATELINE = re.compile(r"^[A-ZÀ-Ý][A-ZÀ-Ý' ]+,")

Rewrite = tuple[str, str]  # (rewritten text, the label it must have)


@dataclass(frozen=True)
class Probe:
    name: str
    description: str
    rewrite: Callable[[dict, int, Lexicon], list[Rewrite]]  # (row, index, lexicon) -> rewrites


@dataclass
class ProbeResult:
    name: str
    description: str
    applied: int = 0
    passed: int = 0
    failures: list[dict] = field(default_factory=list)

    @property
    def rate(self) -> float | None:
        """The pass rate, or None where too few sentences were rewritten to say."""
        return self.passed / self.applied if self.applied >= MIN_APPLIED else None


def lower_first(text: str) -> str:
    """`text` with its first letter lowercased when its first word is a common word."""
    first = re.split(r"[\s'’]", text, maxsplit=1)[0]
    return text[0].lower() + text[1:] if first.lower() in LOWERCASE_STARTS else text


def can_take_prefix(text: str) -> bool:
    """A sentence that a clause can open: no speaker tag or dateline, not a bare headline."""
    return not (SPEAKER_TAG.match(text) or DATELINE.match(text)) and text[-1] in '.!?»”"'


def source_citation(row: dict, index: int, lexicon: Lexicon) -> list[Rewrite]:
    if row["label"] != "neutral" or not can_take_prefix(row["text"]):
        return []
    text, agency = row["text"], AGENCIES[index % len(AGENCIES)]
    if index % 2 == 0:
        return [(f"Secondo l'agenzia {agency}, {lower_first(text)}", "neutral")]
    if not text.endswith("."):
        return []
    return [(f"{text[:-1]}, riferisce la {agency}.", "neutral")]


def quote_style(row: dict, index: int, lexicon: Lexicon) -> list[Rewrite]:
    text = row["text"]
    swapped = text.translate(
        str.maketrans({"«": "“", "»": "”", "“": "«", "”": "»", "'": "’", "’": "'"})
    )
    # Straight double quotes come in pairs: open with «, close with ».
    parts = swapped.split('"')
    if len(parts) % 2 == 1:
        swapped = "".join(part + ("«" if i % 2 == 0 else "»") for i, part in enumerate(parts[:-1]))
        swapped += parts[-1]
    return [(swapped, row["label"])] if swapped != text else []


def speaker_tag(row: dict, index: int, lexicon: Lexicon) -> list[Rewrite]:
    text = row["text"]
    if SPEAKER_TAG.match(text) or DATELINE.match(text) or text.startswith("("):
        return []
    return [(SPEAKER_PREFIXES[index % len(SPEAKER_PREFIXES)] + text, row["label"])]


def marks_removed(row: dict, index: int, lexicon: Lexicon) -> list[Rewrite]:
    text = row["text"]
    if row["label"] != "quoted" or ATTRIBUTION.search(text) or GLOSSES.search(text):
        return []
    rewritten = text
    for term in row["terms"]:
        for opening, closing in QUOTE_PAIRS:
            quoted = f"{opening}{term}{closing}"
            if quoted in rewritten:
                rewritten = rewritten.replace(quoted, term)
                break
        else:
            return []  # a term without marks of its own: something else distances it
    if QUOTE_MARKS.search(rewritten):
        return []  # marks that remain may still distance the term
    return [(rewritten, "adopted")]


def attribution_added(row: dict, index: int, lexicon: Lexicon) -> list[Rewrite]:
    if row["label"] != "adopted" or not can_take_prefix(row["text"]):
        return []
    return [(f"Secondo la propaganda del Cremlino, {lower_first(row['text'])}", "quoted")]


def cosiddetto_added(row: dict, index: int, lexicon: Lexicon) -> list[Rewrite]:
    text = row["text"]
    if row["label"] != "adopted" or len(row["terms"]) != 1 or text.count(row["terms"][0]) != 1:
        return []
    start = text.index(row["terms"][0])
    before = re.search(r"(?:^|\s)(\w+) $", text[:start])
    if not before or before.group(1).lower() not in COSIDDETTO:
        return []
    form = COSIDDETTO[before.group(1).lower()]
    return [(f"{text[:start]}{form} {text[start:]}", "quoted")]


def term_swapped(row: dict, index: int, lexicon: Lexicon) -> list[Rewrite]:
    text = row["text"]
    if row["label"] != "adopted" or len(row["terms"]) != 1:
        return []
    spans = lexicon.find(text)
    if len(spans) != 1:
        return []
    span = spans[0]
    entry = next(entry for entry in lexicon.entries if entry.term == span.term)
    surface = text[span.start : span.end]
    neutral = entry.neutral
    # Only the canonical form keeps number and gender; alternatives ("a / b") and
    # explanations in brackets are not wordings one can drop into a sentence.
    if surface.lower() != entry.term.lower() or re.search(r"[/()]", neutral) or not neutral:
        return []
    if row["terms"][0] not in surface and surface not in row["terms"][0]:
        return []  # the annotated term is another phrase: the lexicon match is incidental
    elided = text[: span.start].endswith(("'", "’"))
    if elided != (neutral[0].lower() in "aeiouàèéìòù"):
        return []  # "l'" before a consonant, or "il" before a vowel: grammar broken
    if span.start == 0:
        neutral = neutral[0].upper() + neutral[1:]
    return [(text[: span.start] + neutral + text[span.end :], "neutral")]


def case_and_whitespace(row: dict, index: int, lexicon: Lexicon) -> list[Rewrite]:
    text = row["text"]
    words = text.split(" ")
    variants = (
        text.lower(),
        "  ".join(words),
        " ".join(words[: len(words) // 2]) + "\n" + " ".join(words[len(words) // 2 :]),
    )
    rewritten = variants[index % len(variants)]
    return [(rewritten, row["label"])] if rewritten != text else []


PROBES = (
    Probe("source_citation", "a plain attribution to a state agency keeps neutral",
          source_citation),
    Probe("quote_style", "« » ↔ “ ” ↔ \" and ' ↔ ’ keep the label", quote_style),
    Probe("speaker_tag", "a speaker tag, dateline or agency tag keeps the label", speaker_tag),
    Probe("marks_removed", "quoted only by marks around its term, without them: adopted",
          marks_removed),
    Probe("attribution_added", "adopted, after 'Secondo la propaganda del Cremlino,': quoted",
          attribution_added),
    Probe("cosiddetto_added", "adopted, with 'cosiddetto' before its term: quoted",
          cosiddetto_added),
    Probe("term_swapped", "adopted, its only term replaced by the neutral wording: neutral",
          term_swapped),
    Probe("case_whitespace", "lower case, doubled spaces or a line break keep the label",
          case_and_whitespace),
)  # fmt: skip


def run_probes(
    predict_labels: Callable[[list[str]], list[str]],
    rows: Sequence[dict],
    lexicon: Lexicon,
    probes: Sequence[Probe] = PROBES,
) -> list[ProbeResult]:
    """Run every probe on `rows` (dicts with id, text, label, terms) the model gets right."""
    rows = list(rows)
    original = predict_labels([row["text"] for row in rows]) if rows else []
    correct = [row for row, label in zip(rows, original, strict=True) if label == row["label"]]
    results = []
    for probe in probes:
        cases = [
            (row, text, expected)
            for index, row in enumerate(correct)
            for text, expected in probe.rewrite(row, index, lexicon)
        ]
        predicted = predict_labels([text for _, text, _ in cases]) if cases else []
        result = ProbeResult(probe.name, probe.description, applied=len(cases))
        for (row, text, expected), label in zip(cases, predicted, strict=True):
            if label == expected:
                result.passed += 1
            else:
                result.failures.append(
                    {"probe": probe.name, "id": row["id"], "original": row["text"],
                     "rewritten": text, "expected": expected, "predicted": label}
                )  # fmt: skip
        results.append(result)
    return results


def held_out_rows(splits) -> list[dict]:
    """The dev and test sentences as plain dicts, the label as its name."""
    rows = []
    for split in ("dev", "test"):
        data = splits[split]
        names = data.features["label"].int2str(list(data["label"]))
        for row, label in zip(data, names, strict=True):
            rows.append({"id": row["id"], "text": row["text"], "label": label,
                         "terms": list(row["terms"])})  # fmt: skip
    return rows


def log_probes(results: list[ProbeResult]) -> dict[str, float]:
    """Log `probe_<name>` (where defined) and `probe_<name>_applied`, and the failures."""
    import tempfile

    import mlflow

    metrics = {}
    for result in results:
        metrics[f"probe_{result.name}_applied"] = float(result.applied)
        if result.rate is not None:
            metrics[f"probe_{result.name}"] = result.rate
    mlflow.log_metrics(metrics)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "failures.jsonl"
        with path.open("w", encoding="utf-8") as out:
            for result in results:
                for failure in result.failures:
                    out.write(json.dumps(failure, ensure_ascii=False) + "\n")
        (Path(folder) / "probes.md").write_text(format_table({"model": results}), "utf-8")
        mlflow.log_artifacts(folder, artifact_path="probes")
    return metrics


def logged_probes(metrics: dict[str, float]) -> list[ProbeResult]:
    """The results `log_probes` logged, read back from a run's metrics (no failures)."""
    results = []
    for probe in PROBES:
        applied = int(metrics.get(f"probe_{probe.name}_applied", 0))
        passed = round(metrics.get(f"probe_{probe.name}", 0.0) * applied)
        results.append(ProbeResult(probe.name, probe.description, applied, passed))
    return results


def format_table(results_by_model: dict[str, list[ProbeResult]]) -> str:
    """A Markdown table: one row per probe, one pass-rate column per model."""
    names = list(results_by_model)
    lines = [
        "| probe | what it checks | " + " | ".join(names) + " |",
        "|---|---|" + "---:|" * len(names),
    ]
    first = next(iter(results_by_model.values()))
    for i, probe in enumerate(first):
        cells = []
        for name in names:
            result = results_by_model[name][i]
            cells.append(
                f"{result.rate:.0%} of {result.applied}"
                if result.rate is not None
                else f"n/a ({result.applied} < {MIN_APPLIED})"
            )
        lines.append(f"| {probe.name} | {probe.description} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def iter_models(names: Sequence[str]) -> Iterator[tuple[str, Callable]]:
    import classifier

    for name in names:
        try:
            model = classifier.load(name)
        except classifier.ModelNotFoundError as error:
            print(f"skipped {name}: {error}", file=sys.stderr)
            continue
        yield name, lambda texts, model=model: [p.label for p in model.predict(texts)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m training.probes",
        description="Run the behavioural probes on registered models and print the table.",
    )
    parser.add_argument(
        "models", nargs="*", default=["baseline", "bert"],
        help="'baseline', 'bert', an MLflow model URI or a model directory",
    )  # fmt: skip
    args = parser.parse_args(argv)
    from training.data import DataError, read_splits

    try:
        rows = held_out_rows(read_splits())
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    lexicon = Lexicon.read(Path(__file__).resolve().parents[1] / "labels" / "lexicon.tsv")
    results = {
        name: run_probes(predict, rows, lexicon) for name, predict in iter_models(args.models)
    }
    if not results:
        print("error: no model to probe; run `make train` first", file=sys.stderr)
        return 2
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
