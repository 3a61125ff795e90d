"""The `classifier` command: score sentences, an article, or a whole CSV / JSONL file.

    classifier score "L'operazione militare speciale prosegue."      # one or more sentences
    classifier score --file article.txt                               # an article, split
    classifier score --input data.csv --text-column text --output out.jsonl

A table goes to the terminal (terms highlighted when it is one); `--json` prints JSON
lines instead. Batch files are streamed in chunks with a progress bar, so memory stays
flat whatever the file size; the output appears only once every row is scored.
A user mistake ends with a one-line `error:` and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path

from classifier.api import InputError, Model, Prediction, load
from classifier.scoring import LABELS
from classifier.store import ModelNotFoundError
from classifier.text import text_problem

CHUNK_ROWS = 256  # rows scored at once in batch mode: big enough to batch, small in memory
COLOURS = {"neutral": "32", "quoted": "33", "adopted": "31"}  # green, yellow, red


class UsageError(Exception):
    """A mistake in the command line or the input files; printed as `error: ...`."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = lambda message, *_, **__: print(f"warning: {message}", file=sys.stderr)
    try:
        return args.run(args)
    except (UsageError, InputError, ModelNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="classifier",
        description="Tell neutral, quoted and adopted state-media language apart "
        "in Italian news sentences.",
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    score = commands.add_parser("score", help="score sentences, an article or a file")
    source = score.add_mutually_exclusive_group(required=True)
    source.add_argument("texts", nargs="*", default=[], metavar="SENTENCE", help="sentences")
    source.add_argument("--file", type=Path, help="a UTF-8 article to split and score")
    source.add_argument("--input", type=Path, help="a .csv or .jsonl file, one text per row")
    score.add_argument("--text-column", default="text", help="column of --input with the text")
    score.add_argument("--output", type=Path, help="JSONL written for --input (default: stdout)")
    score.add_argument("--json", action="store_true", help="print JSON lines, not a table")
    score.add_argument(
        "--model", help="'baseline', 'bert', an MLflow model URI or a model directory "
        "(default: the best registered model)",
    )  # fmt: skip
    score.add_argument(
        "--threshold",
        type=probability,
        help="flag a sentence when P(neutral) is below this (default: the model's operating "
        "point, chosen in training for a 5%% neutral false-positive rate)",
    )
    score.add_argument(
        "--fp32",
        action="store_true",
        help="BERT in fp32 (default: bf16 or int8 where measured as accurate)",
    )
    score.set_defaults(run=run_score)
    return parser


def probability(text: str) -> float:
    """An argparse type: a number between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, found {text!r}")
    return value


def run_score(args) -> int:
    if args.output and not args.input:
        raise UsageError("--output goes with --input")
    if args.file and not args.file.is_file():
        raise UsageError(f"{args.file}: no such file")
    if args.input:
        check_batch_paths(args.input, args.output)
        next(read_rows(args.input, args.text_column), None)  # a wrong column fails before loading
    model = load(args.model, fast=not args.fp32, threshold=args.threshold)
    if args.input:
        score_file(model, args.input, args.text_column, args.output)
    elif args.file:
        text = read_utf8(args.file)
        rows = model.score_article(text)
        if not rows:
            raise UsageError(f"{args.file}: expected some text, found none")
        for start, end, sentence, prediction in rows:
            emit(sentence, prediction, args.json, {"start": start, "end": end})
    else:
        for text, prediction in zip(args.texts, model.predict(args.texts), strict=True):
            emit(text, prediction, args.json)
    return 0


def read_utf8(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UsageError(
            f"{path}: line {line} is not UTF-8 (byte 0x{data[error.start]:02x}); "
            "save the file as UTF-8"
        ) from None


def prediction_record(prediction: Prediction) -> dict:
    return {
        "label": prediction.label,
        "scores": {label: round(prediction.scores[label], 6) for label in LABELS},
        "spans": [{"start": s, "end": e, "term": t} for s, e, t in prediction.spans],
    }


def emit(text: str, prediction: Prediction, as_json: bool, extra: dict | None = None) -> None:
    if as_json:
        record = {**(extra or {}), "text": text, **prediction_record(prediction)}
        print(json.dumps(record, ensure_ascii=False))
        return
    tty = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    label = f"{prediction.label:<8}"
    if tty:
        label = f"\033[{COLOURS[prediction.label]}m{label}\033[0m"
    print(f"{label} {prediction.scores[prediction.label]:.2f}  {highlight(text, prediction, tty)}")
    if prediction.spans and not tty:
        print(" " * 15 + "terms: " + "; ".join(text[s:e] for s, e, _ in prediction.spans))


def highlight(text: str, prediction: Prediction, tty: bool) -> str:
    if not tty:
        return text
    pieces, position = [], 0
    for start, end, _ in prediction.spans:
        pieces += [text[position:start], f"\033[1;4m{text[start:end]}\033[0m"]
        position = end
    return "".join(pieces) + text[position:]


def check_batch_paths(path: Path, output: Path | None) -> None:
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    if path.suffix.lower() not in (".csv", ".jsonl"):
        raise UsageError(f"{path}: expected a .csv or .jsonl file, found {path.suffix or 'none'}")
    if output and output.resolve() == path.resolve():
        raise UsageError("--output must not be the --input file")


def read_rows(path: Path, text_column: str) -> Iterator[tuple[int, dict]]:
    """(line number, row) for each row; the text is checked before it reaches the model."""

    def lines() -> Iterator[tuple[int, str]]:
        with path.open("rb") as handle:
            for number, raw in enumerate(handle, start=1):
                try:
                    yield number, raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    raise UsageError(
                        f"{path}: line {number} is not UTF-8 (byte 0x{raw[error.start]:02x}); "
                        "save the file as UTF-8"
                    ) from None

    if path.suffix.lower() == ".jsonl":
        rows = jsonl_rows(path, lines())
    else:
        rows = csv_rows(path, lines(), text_column)
    for number, row in rows:
        text = row.get(text_column)
        if text_column not in row:
            raise UsageError(
                f"{path}: line {number} has no field {text_column!r}; "
                f"fields are: {', '.join(map(str, row)) or 'none'} (choose one with --text-column)"
            )
        if problem := text_problem(text):
            raise UsageError(f"{path}: line {number}, field {text_column!r}: {problem}")
        yield number, row


def jsonl_rows(path: Path, lines) -> Iterator[tuple[int, dict]]:
    for number, line in lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise UsageError(f"{path}: line {number} is not valid JSON ({error.msg})") from None
        if not isinstance(row, dict):
            raise UsageError(f"{path}: line {number}: expected a JSON object")
        yield number, row


def csv_rows(path: Path, lines, text_column: str) -> Iterator[tuple[int, dict]]:
    numbered = iter(lines)
    current = {"line": 0}

    def text_lines():
        for number, line in numbered:
            current["line"] = number
            yield line

    reader = csv.DictReader(text_lines())
    if reader.fieldnames is None:
        raise UsageError(f"{path}: expected a header row, found an empty file")
    if text_column not in reader.fieldnames:
        raise UsageError(
            f"{path}: no column {text_column!r}; columns are: {', '.join(reader.fieldnames)} "
            "(choose one with --text-column)"
        )
    for row in reader:
        yield current["line"], row


def count_lines(path: Path) -> int:
    with path.open("rb") as handle:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))


def score_file(model: Model, path: Path, text_column: str, output: Path | None) -> None:
    from tqdm import tqdm

    total = count_lines(path) - (path.suffix.lower() == ".csv")
    target = output.with_name(output.name + ".partial") if output else None
    out = target.open("w", encoding="utf-8") if target else sys.stdout
    scored = 0
    try:
        with tqdm(total=total, unit="row", desc="scoring", disable=None) as progress:
            chunk: list[dict] = []
            for _, row in read_rows(path, text_column):
                chunk.append(row)
                if len(chunk) == CHUNK_ROWS:
                    scored += write_chunk(model, chunk, text_column, out)
                    progress.update(len(chunk))
                    chunk = []
            if chunk:
                scored += write_chunk(model, chunk, text_column, out)
                progress.update(len(chunk))
    except BaseException:
        if target:
            out.close()
            target.unlink(missing_ok=True)
            print(f"nothing written to {output}", file=sys.stderr)
        raise
    if target:
        out.close()
        target.replace(output)
        print(f"scored {scored} rows into {output}", file=sys.stderr)


def write_chunk(model: Model, rows: list[dict], text_column: str, out) -> int:
    predictions = model.predict([row[text_column] for row in rows])
    for row, prediction in zip(rows, predictions, strict=True):
        record = {**row, "prediction": prediction_record(prediction)}
        out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return len(rows)


if __name__ == "__main__":
    sys.exit(main())
