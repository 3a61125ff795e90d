"""The `classifier` command: sentences, articles, batch files, and every user mistake."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from classifier import cli


def run(capsys, *args):
    status = cli.main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return status, out, err


def test_score_sentences_prints_a_table_with_terms(use_trained_store, capsys):
    status, out, _ = run(
        capsys,
        "score",
        "--model",
        "baseline",
        "Il regime di Kiev ha respinto la tregua.",
        "A Bari piove.",
    )
    assert status == 0
    lines = out.splitlines()
    assert lines[0].startswith("adopted ") and lines[0].endswith("respinto la tregua.")
    assert lines[1].strip() == "terms: regime di Kiev"
    assert lines[2].startswith("neutral ")


def test_score_json_lines(use_trained_store, capsys):
    status, out, _ = run(
        capsys, "score", "--json", "--model", "baseline", "Il regime di Kiev tace."
    )
    record = json.loads(out)
    assert status == 0 and record["label"] in ("neutral", "quoted", "adopted")
    assert sum(record["scores"].values()) == pytest.approx(1.0, abs=1e-5)
    assert record["spans"] == [{"start": 3, "end": 17, "term": "regime di Kiev"}]


def test_score_an_article_file(use_trained_store, capsys, tmp_path):
    article = tmp_path / "articolo.txt"
    text = "Titolo dell'articolo\n\nPrima frase del dott. Bianchi. Il regime di Kiev tace.\n"
    article.write_text(text, encoding="utf-8")
    status, out, _ = run(capsys, "score", "--json", "--model", "baseline", "--file", str(article))
    records = [json.loads(line) for line in out.splitlines()]
    assert status == 0
    assert [r["text"] for r in records] == [
        "Titolo dell'articolo",
        "Prima frase del dott. Bianchi.",
        "Il regime di Kiev tace.",
    ]
    assert all(text[r["start"] : r["end"]] == r["text"] for r in records)


@pytest.mark.parametrize("suffix", [".csv", ".jsonl"])
def test_score_a_batch_file_keeps_every_row_and_its_fields(
    use_trained_store, capsys, tmp_path, suffix, monkeypatch
):
    monkeypatch.setattr(cli, "CHUNK_ROWS", 4)  # several chunks from a small file
    texts = [
        f"Frase numero {i}, sul regime di Kiev." if i % 3 else f"Piove a Bari ({i})."
        for i in range(10)
    ]
    source = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        source.write_text("id,testo\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(texts)))
    else:
        source.write_text(
            "".join(json.dumps({"id": i, "testo": t}) + "\n" for i, t in enumerate(texts))
        )
    output = tmp_path / "out.jsonl"
    status, _, err = run(
        capsys,
        "score",
        "--model",
        "baseline",
        "--input",
        str(source),
        "--text-column",
        "testo",
        "--output",
        str(output),
    )
    assert status == 0 and "scored 10 rows" in err
    records = [json.loads(line) for line in output.read_text().splitlines()]
    assert [str(r["id"]) for r in records] == [str(i) for i in range(10)]
    assert [r["testo"] for r in records] == texts
    assert all(r["prediction"]["label"] in ("neutral", "quoted", "adopted") for r in records)
    assert not (tmp_path / "out.jsonl.partial").exists()


@pytest.mark.parametrize(
    "name, content, extra, message",
    [
        ("missing.csv", None, [], "missing.csv: no such file"),
        ("data.txt", b"text\nciao\n", [], "expected a .csv or .jsonl file"),
        ("data.csv", b"id,testo\n1,ciao\n", [], "no column 'text'; columns are: id, testo"),
        (
            "data.csv",
            b"text\nciao a tutti\ncaff\xe8 amaro\n",
            [],
            "line 3 is not UTF-8 (byte 0xe8)",
        ),
        (
            "data.jsonl",
            b'{"text": "ciao a tutti"}\n{"text": "   "}\n',
            [],
            "line 2, field 'text': expected text, found an empty or blank string",
        ),
        (
            "data.jsonl",
            b'{"text": "ciao a tutti"}\n{"text": null}\n',
            [],
            "line 2, field 'text': expected a string, found NoneType",
        ),
        (
            "data.jsonl",
            b'{"text": "ciao a tutti"}\n{"testo": "x"}\n',
            [],
            "line 2 has no field 'text'; fields are: testo",
        ),
        ("data.jsonl", b'{"text": "ciao a tutti"}\n{"text": \n', [], "line 2 is not valid JSON"),
        (
            "data.jsonl",
            b'{"text": "ciao a tutti"}\n{"text": "ciao \\ud800"}\n',
            [],
            "line 2, field 'text': expected valid Unicode, found a lone surrogate",
        ),
    ],
)
def test_bad_batch_input_is_a_clear_error(
    use_trained_store, capsys, tmp_path, name, content, extra, message
):
    source = tmp_path / name
    if content is not None:
        source.write_bytes(content)
    output = tmp_path / "out.jsonl"
    status, _, err = run(
        capsys,
        "score",
        "--model",
        "baseline",
        "--input",
        str(source),
        "--output",
        str(output),
        *extra,
    )
    assert status == 2
    assert message in err
    assert not output.exists() and not (tmp_path / "out.jsonl.partial").exists()


def test_article_that_is_not_utf8_is_a_clear_error(use_trained_store, capsys, tmp_path):
    article = tmp_path / "articolo.txt"
    article.write_bytes("Prima riga.\nSeconda riga è qui.".encode("latin-1"))
    status, _, err = run(capsys, "score", "--model", "baseline", "--file", str(article))
    assert status == 2 and "line 2 is not UTF-8" in err


@pytest.mark.parametrize(
    "args, message",
    [
        (["score", "--model", "roberta", "ciao a tutti"], "Unknown model 'roberta'"),
        (["score", "--model", "baseline", "   "], "item 0: expected text"),
        (["score", "--output", "x.jsonl", "ciao a tutti"], "--output goes with --input"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(use_trained_store, capsys, args, message):
    status, _, err = run(capsys, *args)
    assert status == 2 and message in err and err.startswith("error: ")


def test_no_trained_model_tells_the_user_to_train(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'empty.db'}")
    status, _, err = run(capsys, "score", "ciao a tutti")
    assert status == 2 and "make train" in err


def test_installed_command_runs(use_trained_store):
    result = subprocess.run(
        [sys.executable, "-m", "classifier.cli", "score", "--model", "nope", "ciao"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1].startswith("error: Unknown model 'nope'")
