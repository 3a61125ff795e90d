"""Archive scoring with Spark gives exactly what `Model.predict` gives, row for row."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

import classifier
from classifier import cli

pytestmark = [
    pytest.mark.spark,
    pytest.mark.skipif(
        shutil.which("java") is None, reason="Spark needs a Java runtime (openjdk-17-jre-headless)"
    ),
]
pyspark = pytest.importorskip("pyspark", reason="the spark extra is not installed")

TEXTS = [
    "Il regime di Kiev ha respinto la tregua, riferisce la Tass.",
    "A Bari piove da tre giorni e le scuole restano chiuse.",
    "Mosca chiama «operazione militare speciale» l'invasione dell'Ucraina.",
    "Le forze della fratellanza militante hanno sfilato a Pyongyang.",
    'Il ministro ha definito "utile" l\'incontro di ieri a Roma.',
]


def parts_folder(tmp_path, rows: int = 3000, parts: int = 3):
    """A folder of CSV part files holding `rows` sentences with ids, in a known order."""
    folder = tmp_path / "archive"
    folder.mkdir()
    per_part = rows // parts
    for part in range(parts):
        ids = range(part * per_part, (part + 1) * per_part)
        frame = pd.DataFrame(
            {"id": [f"s{i:05d}" for i in ids], "text": [f"{TEXTS[i % 5]} ({i})" for i in ids]}
        )
        frame.to_csv(folder / f"part-{part}.csv", index=False)
    return folder


def run(capsys, *args):
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, err


def test_spark_scores_every_row_as_predict_does(use_trained_store, capsys, tmp_path):
    folder = parts_folder(tmp_path)
    output = tmp_path / "scored.parquet"
    status, err = run(
        capsys, "score", "--model", "baseline", "--input", str(folder), "--output", str(output),
        "--spark", "local[2]",
    )  # fmt: skip
    assert status == 0, err
    scored = pd.read_parquet(output)
    source = pd.concat(pd.read_csv(p) for p in sorted(folder.glob("*.csv")))
    assert list(scored["id"]) == list(source["id"])  # count in = count out, order kept
    expected = classifier.load("baseline").predict(list(source["text"]))
    assert list(scored["label"]) == [p.label for p in expected]
    for label in classifier.LABELS:
        assert scored[label].to_numpy() == pytest.approx(
            [p.scores[label] for p in expected], abs=1e-9
        )
    spans = [json.loads(s) for s in scored["spans"]]
    assert spans == [[{"start": s, "end": e, "term": t} for s, e, t in p.spans] for p in expected]


def test_spark_and_local_paths_write_the_same_columns(use_trained_store, capsys, tmp_path):
    source = tmp_path / "small.jsonl"
    source.write_text(
        "".join(json.dumps({"id": i, "text": t}) + "\n" for i, t in enumerate(TEXTS)), "utf-8"
    )
    local, spark = tmp_path / "local.parquet", tmp_path / "spark.parquet"
    for output, extra in ((local, []), (spark, ["--spark", "local[2]"])):
        status, err = run(
            capsys, "score", "--model", "baseline", "--input", str(source), "--output",
            str(output), *extra,
        )  # fmt: skip
        assert status == 0, err
    a, b = pd.read_parquet(local), pd.read_parquet(spark)
    assert (
        list(a.columns) == list(b.columns) == ["id", "text", "label", *classifier.LABELS, "spans"]
    )
    pd.testing.assert_frame_equal(a, b, check_dtype=False, atol=1e-9)


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "no such file or folder"),
        ("testo,id\nciao,1\n", "no column 'text'; columns are: testo, id"),
        (
            "text,id\nciao a tutti,1\n   ,2\n",
            "row 2: expected text, found an empty or blank string",
        ),
    ],
)
def test_spark_input_mistakes_are_one_line(use_trained_store, capsys, tmp_path, content, message):
    source = tmp_path / "input.csv"
    if content is not None:
        source.write_text(content, encoding="utf-8")
    output = tmp_path / "out.parquet"
    status, err = run(
        capsys, "score", "--model", "baseline", "--input", str(source), "--output", str(output),
        "--spark", "local[2]",
    )  # fmt: skip
    assert status == 2 and message in err, err
    assert not output.exists()
