"""The Label Studio round trip: tasks out, least certain first; annotations back in, or nothing."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from conftest import FIXTURES, read_rows

import classifier
from classifier import cli
from classifier.annotate import margin
from training import annotations, data
from training.annotations import import_annotations

ARTICLES = {
    "uno.txt": "Il regime di Kiev ha respinto la tregua. A Bari piove da tre giorni.\n\n"
    "Mosca chiama «operazione militare speciale» l'invasione dell'Ucraina.",
    "due.txt": "Le forze della fratellanza militante hanno sfilato. Il ministro ha parlato a Roma.",
}
CONFIG = (data.LABELS_DIR / "label-studio.xml").read_text(encoding="utf-8")


@pytest.fixture
def tasks(use_trained_store, tmp_path, capsys):
    paths = []
    for name, text in ARTICLES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / name))
    out = tmp_path / "tasks.json"
    status = cli.main(
        ["annotate", "export", *paths, "--out", str(out), "--top", "4", "--model", "baseline"]
    )
    assert status == 0, capsys.readouterr().err
    return json.loads(out.read_text(encoding="utf-8"))


def test_exported_tasks_fit_label_studio_and_come_least_certain_first(tasks):
    from label_studio_sdk.label_interface import LabelInterface
    from label_studio_sdk.types import PredictionRequest

    interface = LabelInterface(CONFIG)
    assert len(tasks) == 4
    for task in tasks:
        # (validate_task with predictions trips over the SDK's own call; check both parts.)
        assert interface.validate_task({"data": task["data"]})
        (prediction,) = task["predictions"]
        assert interface.validate_prediction(prediction, return_errors=True) == []
        PredictionRequest(**prediction, task=1)  # its own model (the id comes on import)
        text = ARTICLES[task["data"]["document"]]
        assert text[task["data"]["start"] : task["data"]["end"]] == task["data"]["text"]
    model = classifier.load("baseline")
    margins = [margin(model.predict([t["data"]["text"]])[0].scores) for t in tasks]
    assert margins == sorted(margins)
    all_margins = sorted(
        margin(p.scores) for text in ARTICLES.values() for *_, p in model.score_article(text)
    )
    assert margins == pytest.approx(all_margins[:4])
    terms = [
        r["value"]["text"] for t in tasks for r in t["predictions"][0]["result"]
        if r["from_name"] == "terms"
    ]  # fmt: skip
    assert all(
        term in t["data"]["text"] for t in tasks for term in terms if term in t["data"]["text"]
    )


def annotated(tasks, labels_by_text, second=None):
    """A Label Studio export of `tasks`: each annotated with the label given for its text."""
    export = []
    for number, task in enumerate(tasks, start=1):
        text = task["data"]["text"]
        if text not in labels_by_text:
            export.append({"id": number, "data": task["data"], "annotations": []})
            continue
        label, terms = labels_by_text[text]
        annotations = []
        for who, chosen in enumerate(
            [label, *([second[text]] if second and text in second else [])]
        ):
            result = [{"from_name": "label", "to_name": "text", "type": "choices",
                       "value": {"choices": [chosen]}}]  # fmt: skip
            for term in terms if chosen != "neutral" else []:
                start = text.index(term)
                result.append({"from_name": "terms", "to_name": "text", "type": "labels",
                               "value": {"start": start, "end": start + len(term), "text": term,
                                         "labels": ["term"]}})  # fmt: skip
            annotations.append({"id": 10 * number + who, "completed_by": who + 1, "result": result})
        export.append({"id": number, "data": task["data"], "annotations": annotations})
    return export


def labels_copy(tmp_path):
    folder = tmp_path / "labels"
    folder.mkdir()
    for name in ("sentences.jsonl", "documents.tsv", "lexicon.tsv"):
        shutil.copy(FIXTURES / name, folder / name)
    shutil.copytree(FIXTURES / "seeds", tmp_path / "seeds")
    return folder


def digests(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def write(tmp_path, export, name="export.json"):
    path = tmp_path / name
    path.write_text(json.dumps(export, ensure_ascii=False), encoding="utf-8")
    return path


def choices(tasks):
    texts = [t["data"]["text"] for t in tasks]
    return {
        texts[0]: ("adopted", ["regime di Kiev"])
        if "regime di Kiev" in texts[0]
        else ("neutral", []),
        texts[1]: ("neutral", []),
    }


def test_the_round_trip_adds_exactly_the_annotated_rows(tasks, tmp_path):
    from label_studio_sdk.label_interface import LabelInterface

    labels = labels_copy(tmp_path)
    before = read_rows(labels / "sentences.jsonl")
    chosen = choices(tasks)
    export = annotated(tasks, chosen)
    interface = LabelInterface(CONFIG)
    assert all(interface.validate_annotation(a) for t in export for a in t["annotations"])
    imported = import_annotations(write(tmp_path, export), "lsa", labels, limits=False)
    after = read_rows(labels / "sentences.jsonl")
    assert after[: len(before)] == before
    added = after[len(before) :]
    assert sorted((r["text"], r["label"]) for r in added) == sorted(
        (text, label) for text, (label, _) in chosen.items()
    )
    assert all(r["source"] == "annotated:export.json" for r in added)
    assert imported.skipped == len(tasks) - 2 and imported.conflicts == []
    documents = {
        line.split("\t")[0]: line.split("\t")
        for line in (labels / "documents.tsv").read_text().splitlines()
    }
    for row in added:
        assert documents[row["doc"]][5] == "annotated"
    report = data.check_dataset(
        labels / "sentences.jsonl", labels / "documents.tsv", labels / "lexicon.tsv",
        tmp_path / "seeds", limits=False,
    )  # fmt: skip
    assert report.errors == []


def test_disagreements_are_kept_out_and_agreement_is_measured(tmp_path):
    labels = labels_copy(tmp_path)
    neutral = {"from_name": "label", "value": {"choices": ["neutral"]}}
    quoted = {"from_name": "label", "value": {"choices": ["quoted"]}}
    term = {"from_name": "terms", "value": {"start": 3, "end": 17, "text": "regime di Kiev"}}
    export = [
        {"id": 1, "data": {"text": "Piove molto a Bari da lunedì.", "document": "a.txt"},
         "annotations": [{"result": [neutral]}, {"result": [neutral]}]},
        {"id": 2, "data": {"text": "Il regime di Kiev, dice Mosca, tace.", "document": "a.txt"},
         "annotations": [{"result": [neutral]}, {"result": [quoted, term]}]},
    ]  # fmt: skip
    imported = import_annotations(write(tmp_path, export), "lsb", labels, limits=False)
    assert imported.conflicts == [
        "task 2: annotators disagree (neutral, quoted): 'Il regime di Kiev, dice Mosca, tace.'"
    ]
    assert [r["text"] for r in imported.rows] == ["Piove molto a Bari da lunedì."]
    # One agreement and one disagreement on each label's yes/no: kappa 0 where defined.
    assert imported.kappa == {"neutral": 0.0, "quoted": 0.0}


@pytest.mark.parametrize(
    "breaker, message",
    [
        (lambda export: "not json", "expected a Label Studio JSON export"),
        (
            lambda export: [
                dict(
                    export[0],
                    annotations=[
                        {"result": [{"from_name": "label", "value": {"choices": ["propaganda"]}}]}
                    ],
                )
            ],
            "task 1, annotation 1: expected one label of",
        ),  # fmt: skip
        (
            lambda export: [
                dict(
                    export[0],
                    annotations=[
                        {
                            "result": [
                                {"from_name": "label", "value": {"choices": ["quoted"]}},
                                {"from_name": "terms", "value": {"start": 0, "end": 10_000}},
                            ]
                        }
                    ],
                )
            ],
            "task 1, annotation 1: expected a term span inside the sentence",
        ),  # fmt: skip
        (lambda export: [export[0], dict(export[0], id=2)], "task 2: the same sentence as task 1"),
    ],
)
def test_a_broken_export_names_the_task_and_leaves_labels_untouched(
    tasks, tmp_path, breaker, message
):
    labels = labels_copy(tmp_path)
    before = digests(labels)
    export = breaker(annotated(tasks, choices(tasks)))
    path = tmp_path / "export.json"
    path.write_text(export if isinstance(export, str) else json.dumps(export), encoding="utf-8")
    try:
        imported = import_annotations(path, "lsc", labels, limits=False)
    except data.DataError as error:
        assert message in str(error)
    else:
        assert any(message in conflict for conflict in imported.conflicts), imported.conflicts
    if not isinstance(export, str) and "same sentence" in message:
        assert digests(labels) != before  # the first copy went in; the duplicate did not
        rows = read_rows(labels / "sentences.jsonl")
        assert sum(r["text"] == export[0]["data"]["text"] for r in rows) == 1
    else:
        assert digests(labels) == before


def test_a_sentence_already_in_the_data_is_a_conflict(tmp_path):
    labels = labels_copy(tmp_path)
    known = read_rows(labels / "sentences.jsonl")[0]["text"]
    export = [{"id": 7, "data": {"text": known, "document": "x.txt"}, "annotations": [
        {"result": [{"from_name": "label", "value": {"choices": ["neutral"]}}]}]}]  # fmt: skip
    before = digests(labels)
    imported = import_annotations(write(tmp_path, export), "lsd", labels, limits=False)
    assert imported.conflicts == [f"task 7: the sentence is already in the data: {known!r}"]
    assert imported.rows == [] and digests(labels) == before


def test_the_import_command_prints_one_error_line(tmp_path, capsys):
    status = annotations.main([str(tmp_path / "missing.json"), "--doc-prefix", "lse",
                        "--labels", str(labels_copy(tmp_path)), "--no-limits"])  # fmt: skip
    assert status == 2 and capsys.readouterr().err.startswith("error: ")
