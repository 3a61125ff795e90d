"""Bring a Label Studio export back into `labels/`, or refuse it whole.

    python -m training.data import-annotations export.json --doc-prefix lsa

The export is Label Studio's JSON export of a project made with `labels/label-studio.xml`
and tasks from `classifier annotate export`. What the annotators chose is taken (never
the model's pre-annotations): the label, and the term spans, which must lie inside the
sentence and cover its text exactly. Tasks nobody annotated are skipped. A task with
several annotations is kept only when they agree on the label (their term spans are
joined); agreement is reported as Cohen's kappa per label (one against the rest) between
the first two annotations of each such task, and disagreements are listed, kept out of
the data until someone resolves them. A sentence that is already in the data, or twice in
the export, is a conflict too.

Each exported document becomes a new document `<prefix>-NNN` of the layer `annotated`,
with `source` = `annotated:<export file name>`, a story of its own and a split drawn from
the story's name (about 70/15/15), so no story or document lands in two splits. The
result is checked with the whole dataset checker on copies of the files, and nothing is
written unless it passes; then both files are replaced at once.

Deliberately left out: resolving disagreements (that is a person's job) and any other
Label Studio format than its JSON export.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from classifier.bundle import LABELS
from classifier.text import text_problem
from training.data import (
    DOCUMENT_FIELDS,
    GENRES,
    LABELS_DIR,
    REGIMES,
    DataError,
    check_dataset,
    normalise,
)

SPLIT_SHARES = (("train", 70), ("dev", 15), ("test", 15))


@dataclass
class Imported:
    rows: list[dict] = field(default_factory=list)  # new sentences.jsonl rows
    documents: list[dict] = field(default_factory=list)  # new documents.tsv rows
    conflicts: list[str] = field(default_factory=list)  # kept out, for a person to resolve
    skipped: int = 0  # tasks nobody annotated
    kappa: dict[str, float] = field(default_factory=dict)  # per label, where defined


def read_export(path: Path) -> list[dict]:
    try:
        tasks = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(
            [f"{path}: expected a Label Studio JSON export, cannot read it ({error})"]
        ) from None
    if not isinstance(tasks, list) or not all(isinstance(task, dict) for task in tasks):
        raise DataError([f"{path}: expected a JSON list of tasks, found {type(tasks).__name__}"])
    return tasks


def annotation_of(task: dict, annotation: dict, where: str) -> tuple[str, list[str]]:
    """(label, terms) of one annotation, or a DataError saying what is wrong with it."""
    text = task["data"]["text"]
    labels, terms = [], []
    for region in annotation.get("result") or []:
        value = region.get("value") or {}
        if region.get("from_name") == "label":
            labels.extend(value.get("choices") or [])
        elif region.get("from_name") == "terms":
            start, end = value.get("start"), value.get("end")
            if not (
                isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(text)
            ):
                raise DataError(
                    [f"{where}: expected a term span inside the sentence, found {start}-{end}"]
                )
            if value.get("text") not in (None, text[start:end]):
                raise DataError(
                    [f"{where}: the span {start}-{end} does not hold {value['text']!r}"]
                )
            terms.append(text[start:end].strip())
    if len(labels) != 1 or labels[0] not in LABELS:
        raise DataError([f"{where}: expected one label of {list(LABELS)}, found {labels}"])
    label = labels[0]
    if label == "neutral" and terms:
        raise DataError([f"{where}: a neutral sentence takes no term spans, found {terms}"])
    if label != "neutral" and not terms:
        raise DataError([f"{where}: a {label} sentence needs its term spans, found none"])
    return label, list(dict.fromkeys(terms))


def split_of(story: str) -> str:
    """A split drawn from the story's name: stable, and the same for all its documents."""
    bucket = int(hashlib.sha256(story.encode("utf-8")).hexdigest()[:8], 16) % 100
    for split, share in SPLIT_SHARES:
        if bucket < share:
            return split
        bucket -= share
    return "train"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40] or "document"


def convert(tasks: list[dict], export_name: str, prefix: str, existing: list[dict],
            genre: str, regime: str, topic: str) -> Imported:  # fmt: skip
    """The rows an export adds, its conflicts and its agreement; raises on a broken task."""
    from sklearn.metrics import cohen_kappa_score

    imported = Imported()
    known = {normalise(row["text"]) for row in existing}
    seen: dict[str, str] = {}
    pairs = []  # (first annotator's label, second annotator's label) per multi-annotated task
    by_document: dict[str, list] = collections.defaultdict(list)
    for number, task in enumerate(tasks, start=1):
        where = f"task {task.get('id', number)}"
        data = task.get("data")
        if not isinstance(data, dict) or (problem := text_problem(data.get("text"))):
            raise DataError(
                [f"{where}: expected data.text with a sentence, found {problem or data!r}"]
            )
        annotations = [a for a in task.get("annotations") or [] if not a.get("was_cancelled")]
        if not annotations:
            imported.skipped += 1
            continue
        decided = [annotation_of(task, a, f"{where}, annotation {a.get('id', i)}")
                   for i, a in enumerate(annotations, start=1)]  # fmt: skip
        if len(decided) > 1:
            pairs.append((decided[0][0], decided[1][0]))
        if len({label for label, _ in decided}) > 1:
            imported.conflicts.append(
                f"{where}: annotators disagree ({', '.join(label for label, _ in decided)}): "
                f"{data['text']!r}"
            )
            continue
        key = normalise(data["text"])
        if key in known:
            imported.conflicts.append(
                f"{where}: the sentence is already in the data: {data['text']!r}"
            )
            continue
        if key in seen:
            imported.conflicts.append(
                f"{where}: the same sentence as {seen[key]}: {data['text']!r}"
            )
            continue
        seen[key] = where
        terms = list(dict.fromkeys(term for _, found in decided for term in found))
        by_document[str(data.get("document") or export_name)].append(
            (data.get("start", number), data["text"], decided[0][0], terms)
        )
    for label in LABELS:
        first = [a == label for a, _ in pairs]
        second = [b == label for _, b in pairs]
        if pairs and len(set(first) | set(second)) > 1:
            imported.kappa[label] = float(cohen_kappa_score(first, second))
    for index, (document, sentences) in enumerate(sorted(by_document.items()), start=1):
        doc = f"{prefix}-{index:03d}"
        story = f"{prefix}-{slug(document)}"
        split = split_of(story)
        imported.documents.append(
            {"doc": doc, "genre": genre, "regime": regime, "topic": topic, "story": story,
             "layer": "annotated"}
        )  # fmt: skip
        for position, (_, text, label, terms) in enumerate(
            sorted(sentences, key=lambda s: s[0]), 1
        ):
            imported.rows.append(
                {"id": f"{doc}-{position:02d}", "text": text.strip(), "label": label,
                 "split": split, "doc": doc, "source": f"annotated:{export_name}", "terms": terms}
            )  # fmt: skip
    return imported


def import_annotations(export: Path, prefix: str, labels_dir: Path, *, genre: str = "report",
                       regime: str = "none", topic: str = "annotated",
                       limits: bool = True) -> Imported:  # fmt: skip
    """Check the export, append it to `labels_dir` if the whole dataset still passes."""
    sentences_path = labels_dir / "sentences.jsonl"
    if not re.fullmatch(r"[a-z]{2,8}", prefix):
        raise DataError([f"--doc-prefix: expected 2-8 lowercase letters, found {prefix!r}"])
    existing = [json.loads(line) for line in sentences_path.read_text("utf-8").splitlines() if line]
    if any(row["doc"].startswith(f"{prefix}-") for row in existing):
        raise DataError([f"--doc-prefix {prefix!r} is taken by documents already in the data"])
    imported = convert(
        read_export(export), Path(export).name, prefix, existing, genre, regime, topic
    )
    if not imported.rows:
        return imported
    with tempfile.TemporaryDirectory(prefix="import-") as folder:
        staged = Path(folder)
        for name in ("sentences.jsonl", "documents.tsv", "lexicon.tsv"):
            shutil.copy(labels_dir / name, staged / name)
        with (staged / "sentences.jsonl").open("a", encoding="utf-8") as out:
            for row in imported.rows:
                out.write(json.dumps(row, ensure_ascii=False) + "\n")
        with (staged / "documents.tsv").open("a", encoding="utf-8") as out:
            for row in imported.documents:
                out.write("\t".join(row[name] for name in DOCUMENT_FIELDS) + "\n")
        seeds = labels_dir.parent / "seeds"
        report = check_dataset(staged / "sentences.jsonl", staged / "documents.tsv",
                               staged / "lexicon.tsv", seeds, limits=limits)  # fmt: skip
        if report.errors:
            raise DataError(report.errors)
        # Both files move into place only now, each by one rename.
        for name in ("sentences.jsonl", "documents.tsv"):
            target = labels_dir / name
            handle, temporary = tempfile.mkstemp(dir=labels_dir, prefix=f".{name}.")
            os.close(handle)
            shutil.copy(staged / name, temporary)
            os.replace(temporary, target)
    return imported


def main(argv: list[str] | None = None) -> int:
    """`python -m training.data import-annotations EXPORT --doc-prefix PREFIX`."""
    parser = argparse.ArgumentParser(
        prog="python -m training.data import-annotations",
        description="Append a Label Studio JSON export to labels/ as new documents; nothing "
        "is written unless the whole dataset still passes the checker.",
    )
    parser.add_argument("export", type=Path, help="Label Studio's JSON export")
    parser.add_argument(
        "--doc-prefix", required=True, help="2-8 lowercase letters for the new doc ids"
    )
    parser.add_argument("--labels", type=Path, default=LABELS_DIR, help="the labels/ folder")
    parser.add_argument("--genre", default="report", choices=GENRES)
    parser.add_argument("--regime", default="none", choices=REGIMES)
    parser.add_argument("--topic", default="annotated", help="a lowercase slug")
    parser.add_argument("--no-limits", action="store_true", help="skip the shortcut limits")
    args = parser.parse_args(argv)
    try:
        imported = import_annotations(
            args.export, args.doc_prefix, args.labels, genre=args.genre, regime=args.regime,
            topic=args.topic, limits=not args.no_limits,
        )  # fmt: skip
    except DataError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for conflict in imported.conflicts:
        print(f"conflict (kept out): {conflict}")
    for label, kappa in imported.kappa.items():
        print(f"Cohen's kappa, {label} against the rest: {kappa:.3f}")
    print(
        f"added {len(imported.rows)} sentences in {len(imported.documents)} documents; "
        f"{len(imported.conflicts)} conflict(s) kept out; {imported.skipped} task(s) not annotated"
    )
    return 0
