"""The `classifier` command: sentences, articles, batch files, and every user mistake."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import classifier
from classifier import batch, cli


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


def test_flag_without_term_lets_the_threshold_reach_sentences_without_a_term(
    use_trained_store, capsys
):
    sentences = ["Il regime di Kiev ha respinto la tregua.", "A Bari piove."]
    args = ["score", "--json", "--model", "baseline", "--threshold", "1", *sentences]
    _, out, _ = run(capsys, *args)
    assert [json.loads(line)["label"] != "neutral" for line in out.splitlines()] == [True, False]
    _, out, _ = run(capsys, *args, "--flag-without-term")
    assert all(json.loads(line)["label"] != "neutral" for line in out.splitlines())


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


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
@pytest.mark.parametrize("out_suffix", [".jsonl", ".parquet"])
def test_score_a_batch_file_keeps_every_row_and_its_fields(
    use_trained_store, capsys, tmp_path, suffix, out_suffix, monkeypatch
):
    import pandas as pd

    monkeypatch.setattr(batch, "CHUNK_ROWS", 4)  # several chunks from a small file
    texts = [
        f"Frase numero {i}, sul regime di Kiev." if i % 3 else f"Piove a Bari ({i})."
        for i in range(10)
    ]
    source = tmp_path / f"data{suffix}"
    if suffix == ".csv":
        source.write_text("id,testo\n" + "".join(f'{i},"{t}"\n' for i, t in enumerate(texts)))
    elif suffix == ".jsonl":
        source.write_text(
            "".join(json.dumps({"id": i, "testo": t}) + "\n" for i, t in enumerate(texts))
        )
    else:
        pd.DataFrame({"id": range(10), "testo": texts}).to_parquet(source)
    output = tmp_path / f"out{out_suffix}"
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
    if out_suffix == ".jsonl":
        records = [json.loads(line) for line in output.read_text().splitlines()]
    else:
        records = pd.read_parquet(output).to_dict("records")
    assert [str(r["id"]) for r in records] == [str(i) for i in range(10)]
    assert [r["testo"] for r in records] == texts
    assert list(records[0]) == ["id", "testo", "label", "neutral", "quoted", "adopted", "spans"]
    expected = classifier.load("baseline").predict(texts)
    assert [r["label"] for r in records] == [p.label for p in expected]
    assert [json.loads(r["spans"]) for r in records] == [
        [{"start": s, "end": e, "term": t} for s, e, t in p.spans] for p in expected
    ]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([source.name, output.name])


@pytest.mark.parametrize(
    "name, content, extra, message",
    [
        ("missing.csv", None, [], "missing.csv: no such file"),
        ("data.txt", b"text\nciao\n", [], "expected .csv, .jsonl, .parquet, found .txt"),
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


def test_python_dash_m_classifier_is_the_command(use_trained_store):
    result = subprocess.run(
        [sys.executable, "-m", "classifier", "score", "--model", "nope", "ciao"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 2 and "error: Unknown model 'nope'" in result.stderr


def write_batch(tmp_path, content: str | bytes, name="data.csv"):
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return path


def score_batch(capsys, source, output=None, *extra):
    args = ["score", "--model", "baseline", "--input", str(source)]
    return run(capsys, *args, *(["--output", str(output)] if output else []), *extra)


def test_a_byte_order_mark_and_a_huge_cell_are_read(use_trained_store, capsys, tmp_path):
    huge = "Il regime di Kiev tace. " * 8000  # 192,000 characters, over csv's default limit
    source = write_batch(
        tmp_path, b"\xef\xbb\xbf" + f"text,id\n{huge},1\nA Bari piove.,2\n".encode()
    )
    status, _, err = score_batch(capsys, source, tmp_path / "out.jsonl")
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert status == 0, err
    assert [row["id"] for row in rows] == ["1", "2"] and rows[0]["text"] == huge


@pytest.mark.parametrize(
    "content, message",
    [
        ("text,text\nuno,due\n", "the header repeats the column(s) ['text']"),
        ("text,id\nuno,1,sorpresa\n", "line 2 has more fields than the header's 2"),
        ('text\n"non chiusa\n', "unexpected end of data"),
    ],
)
def test_csv_shape_problems_are_one_line(use_trained_store, capsys, tmp_path, content, message):
    status, _, err = score_batch(capsys, write_batch(tmp_path, content), tmp_path / "out.jsonl")
    assert status == 2 and message in err, err


def test_an_existing_column_is_never_overwritten(use_trained_store, capsys, tmp_path):
    source = write_batch(tmp_path, '{"text": "Piove.", "label": "mia"}\n', "data.jsonl")
    status, _, err = score_batch(capsys, source, tmp_path / "out.jsonl")
    assert status == 2 and "['label']" in err and "--prediction-prefix" in err
    assert not (tmp_path / "out.jsonl").exists()
    status, _, _ = score_batch(
        capsys, source, tmp_path / "out.jsonl", "--prediction-prefix", "framing_"
    )
    row = json.loads((tmp_path / "out.jsonl").read_text())
    assert status == 0 and row["label"] == "mia" and row["framing_label"] in classifier.LABELS


def test_deeply_nested_json_is_a_clear_error(use_trained_store, capsys, tmp_path):
    source = write_batch(tmp_path, "[" * 100_000 + "\n", "data.jsonl")
    status, _, err = score_batch(capsys, source, tmp_path / "out.jsonl")
    assert status == 2 and "line 1 is nested too deeply" in err


@pytest.mark.parametrize("kind", ["missing directory", "a directory"])
def test_an_unusable_output_fails_before_the_model_loads(capsys, tmp_path, kind):
    source = write_batch(tmp_path, "text\nPiove.\n")
    output = tmp_path / "nowhere" / "out.jsonl" if kind == "missing directory" else tmp_path
    # No store is set up: had the model been loaded first, the error would be about it.
    status, _, err = score_batch(capsys, source, output)
    assert status == 2 and f"--output {output}" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.csv"]


def test_output_goes_through_a_private_temporary_file(use_trained_store, capsys, tmp_path):
    source = write_batch(tmp_path, "text\nPiove a Bari.\nIl regime di Kiev tace.\n")
    stranger = tmp_path / "out.jsonl.partial"  # another run's, or someone's, file
    stranger.write_text("not ours")
    status, _, _ = score_batch(capsys, source, tmp_path / "out.jsonl")
    assert status == 0 and stranger.read_text() == "not ours"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["data.csv", "out.jsonl", "out.jsonl.partial"]
    )


def test_streaming_to_stdout_says_how_far_it_got(use_trained_store, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(batch, "CHUNK_ROWS", 2)
    source = write_batch(tmp_path, "text\nuno.\ndue.\ntre.\nquattro.\n   \n")
    status, out, err = score_batch(capsys, source)
    assert status == 2 and len(out.splitlines()) == 4
    assert "stopped after writing 4 rows to stdout" in err and "line 6" in err


def test_a_closed_pipe_ends_quietly(use_trained_store, tmp_path):
    source = write_batch(tmp_path, "text\n" + "Piove a Bari.\n" * 3000)
    command = f"{sys.executable} -m classifier score --model baseline --input {source} | head -1"
    result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=300)
    assert len(result.stdout.splitlines()) == 1 and "Traceback" not in result.stderr


def test_control_characters_never_reach_the_terminal_raw(use_trained_store, capsys):
    text = "Il regime di Kiev\x1b]0;PWNED\x07\x1b[2J tace \x9b31m."
    status, out, _ = run(capsys, "score", "--model", "baseline", text)
    assert status == 0 and "\x1b" not in out and "\x9b" not in out and "\\x1b]0;PWNED" in out
    status, out, _ = run(capsys, "score", "--json", "--model", "baseline", text)
    assert "\x9b" not in out and json.loads(out)["text"] == text


def test_an_article_file_mistake_names_the_file(use_trained_store, capsys, tmp_path):
    status, _, err = run(capsys, "score", "--model", "baseline", "--file", str(tmp_path))
    assert status == 2 and f"{tmp_path}: is a directory" in err
    empty = tmp_path / "vuoto.txt"
    empty.write_text("\n\n")
    status, _, err = run(capsys, "score", "--model", "baseline", "--file", str(empty))
    assert status == 2 and f"{empty}: expected text" in err


def test_a_byte_order_mark_does_not_shift_article_offsets(use_trained_store, capsys, tmp_path):
    article = tmp_path / "articolo.txt"
    article.write_bytes(b"\xef\xbb\xbfIl regime di Kiev tace.")
    status, out, _ = run(capsys, "score", "--json", "--model", "baseline", "--file", str(article))
    record = json.loads(out)
    assert status == 0 and record["text"] == "Il regime di Kiev tace." and record["start"] == 0
    assert record["spans"] == [{"start": 3, "end": 17, "term": "regime di Kiev"}]
