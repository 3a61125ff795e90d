"""The `classifier` command: score sentences, an article, or a whole CSV / JSONL file.

    classifier score "L'operazione militare speciale prosegue."      # one or more sentences
    classifier score --file article.txt                               # an article, split
    classifier score --input data.csv --text-column text --output out.jsonl
    classifier report article.txt -o report.html                     # a page to read
    classifier annotate export a.txt b.txt --out tasks.json          # Label Studio tasks

A table goes to the terminal (terms highlighted when it is one, control characters of
the text shown escaped); `--json` prints JSON lines instead. Batch files are streamed in
chunks with a progress bar, so memory stays flat whatever the file size. With `--output`
the rows go to a temporary file beside the target, renamed into place only once every
row is scored; without it they stream to stdout as they are scored, and a run that stops
early says on stderr how many rows it wrote. A user mistake ends with a one-line
`error:` and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import tempfile
import warnings
from pathlib import Path

from classifier.api import InputError, Prediction, load
from classifier.batch import BatchError, check_paths, read_rows, score_file, to_json
from classifier.scoring import LABELS
from classifier.store import ModelNotFoundError
from classifier.text import text_problem

COLOURS = {"neutral": "32", "quoted": "33", "adopted": "31"}  # green, yellow, red
# C0 and C1 control characters (escape sequences start with one) and DEL, shown escaped
# in the terminal; tab stays a tab.
CONTROLS = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x09), *range(0x0A, 0x20), *range(0x7F, 0xA0)]}


class UsageError(Exception):
    """A mistake in the command line or the input files; printed as `error: ...`."""


class Terminated(BaseException):
    """SIGTERM, raised where the process was, so that partial files are removed."""


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    warnings.showwarning = lambda message, *_, **__: print(f"warning: {message}", file=sys.stderr)
    previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return args.run(args)
    except (UsageError, InputError, ModelNotFoundError, BatchError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("terminated", file=sys.stderr)
        return 143
    except BrokenPipeError:
        # The reader went away (`| head`): stop quietly; stdout cannot take more.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)


def _terminate(signum, frame):
    raise Terminated


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
    source.add_argument(
        "--input", type=Path,
        help="a .csv, .jsonl or .parquet file (or a folder of parts), one text per row",
    )  # fmt: skip
    score.add_argument("--text-column", default="text", help="column of --input with the text")
    score.add_argument(
        "--output", type=Path,
        help="a .jsonl or .parquet file written for --input (default: JSON lines to stdout)",
    )  # fmt: skip
    score.add_argument(
        "--prediction-prefix",
        default="",
        help="prefix for the columns added to each --input row (label, neutral, quoted, "
        "adopted, spans)",
    )
    score.add_argument(
        "--spark",
        nargs="?",
        const="local[*]",
        metavar="MASTER",
        help="score --input with Apache Spark (default master: local[*]); needs the spark "
        "extra and a Java runtime",
    )
    score.add_argument("--json", action="store_true", help="print JSON lines, not a table")
    score.add_argument(
        "--explain",
        action="store_true",
        help="also show the words that pushed each sentence towards its label (slower)",
    )
    add_model_options(score)
    score.set_defaults(run=run_score)

    report = commands.add_parser("report", help="an article as a self-contained HTML page")
    report.add_argument("article", type=Path, help="a UTF-8 text file")
    report.add_argument("-o", "--output", type=Path, required=True, help="the HTML file to write")
    add_model_options(report)
    report.add_argument(
        "--no-explain",
        action="store_true",
        help="leave out the words the model leaned on (faster for BERT)",
    )
    report.set_defaults(run=run_report)

    annotate = commands.add_parser("annotate", help="Label Studio tasks for new labelled data")
    actions = annotate.add_subparsers(required=True, metavar="ACTION")
    export = actions.add_parser("export", help="tasks for the sentences the model is least sure of")
    export.add_argument("articles", nargs="+", type=Path, help="UTF-8 text files")
    export.add_argument("--out", type=Path, required=True, help="the tasks JSON file to write")
    export.add_argument("--top", type=int, default=100, help="how many sentences (default 100)")
    export.add_argument("--model", help=MODEL_HELP)
    export.set_defaults(run=run_annotate_export)
    return parser


def run_annotate_export(args) -> int:
    import json

    from classifier.annotate import export_tasks

    if args.top < 1:
        raise UsageError(f"--top: expected a positive number, found {args.top}")
    if args.out.is_dir() or not args.out.parent.is_dir():
        raise UsageError(f"--out {args.out}: expected a file name in an existing directory")
    articles = {}
    for path in args.articles:
        check_file(path)
        text = read_utf8(path)
        if problem := text_problem(text):
            raise UsageError(f"{path}: {problem}")
        if path.name in articles:
            raise UsageError(f"{path}: two articles share the name {path.name!r}; rename one")
        articles[path.name] = text
    model = load(args.model)
    tasks = export_tasks(model, articles, args.top)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=args.out.parent, prefix=f".{args.out.name}.", delete=False
    ) as out:
        json.dump(tasks, out, ensure_ascii=False, indent=1)
    os.replace(out.name, args.out)
    print(f"{len(tasks)} tasks, least certain first: {args.out}", file=sys.stderr)
    return 0


def run_report(args) -> int:
    from classifier.report import render_report

    check_file(args.article)
    text = read_utf8(args.article)
    if problem := text_problem(text):
        raise UsageError(f"{args.article}: {problem}")
    output = args.output
    if output.is_dir() or not output.parent.is_dir():
        raise UsageError(f"-o {output}: expected a file name in an existing directory")
    model = load_for(args)
    scored = model.score_article(text, explain=not args.no_explain)
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    # The title is the first line that reads as one: pages saved from the web often open
    # with a menu ("• En", "Home").
    title = next((line for line in lines if len(line.split()) >= 4), lines[0])
    name = f"{model.family} ({model.source})"
    page = render_report(text, scored, name, model.threshold, title, model.require_term)
    with tempfile.NamedTemporaryFile(
        "w", encoding="utf-8", dir=output.parent, prefix=f".{output.name}.", delete=False
    ) as out:
        out.write(page)
    os.replace(out.name, output)
    flagged = sum(prediction.label != "neutral" for *_, prediction in scored)
    print(f"{len(scored)} sentences, {flagged} flagged: {output}", file=sys.stderr)
    return 0


MODEL_HELP = (
    "'baseline', 'bert', an MLflow model URI or a model directory (default: the registered "
    "@champion)"
)


def add_model_options(parser: argparse.ArgumentParser) -> None:
    """--model, --threshold, --flag-without-term and --fp32, for every command that loads a
    model."""
    parser.add_argument("--model", help=MODEL_HELP)
    parser.add_argument(
        "--threshold",
        type=probability,
        help="flag a sentence when P(neutral) is below this (default: the model's operating "
        "point, chosen in training for a 5%% neutral false-positive rate on dev)",
    )
    parser.add_argument(
        "--flag-without-term",
        action="store_true",
        help="let the model flag sentences in which the lexicon finds no term (by default "
        "they are neutral: on real pages most false alarms have none)",
    )
    parser.add_argument(
        "--fp32",
        action="store_true",
        help="BERT in fp32 (default: bf16 where the CPU has it and training measured it as "
        "accurate)",
    )


def load_for(args):
    """The model that `add_model_options`' arguments ask for."""
    return load(
        args.model,
        fast=not args.fp32,
        threshold=args.threshold,
        require_term=False if args.flag_without_term else None,
    )


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
    text = None
    if args.file:
        check_file(args.file)
        text = read_utf8(args.file)
        if problem := text_problem(text):
            raise UsageError(f"{args.file}: {problem}")
    if args.spark and not args.input:
        raise UsageError("--spark goes with --input")
    if args.input and args.spark:
        from classifier.spark import score_with_spark

        score_with_spark(
            args.model, args.input, args.output, args.text_column, args.spark,
            prefix=args.prediction_prefix, threshold=args.threshold, fast=not args.fp32,
            require_term=False if args.flag_without_term else None,
        )  # fmt: skip
        return 0
    if args.input:
        # Everything that can be checked without the model is checked before it loads.
        check_paths(args.input, args.output)
        next(read_rows(args.input, args.text_column), None)
    model = load_for(args)
    if args.input:
        score_file(
            model, args.input, args.text_column, args.output, args.prediction_prefix, args.explain
        )
    elif args.file:
        for start, end, sentence, prediction in model.score_article(text, explain=args.explain):
            emit(sentence, prediction, args.json, {"start": start, "end": end})
    else:
        predictions = model.predict(args.texts, explain=args.explain)
        for text, prediction in zip(args.texts, predictions, strict=True):
            emit(text, prediction, args.json)
    return 0


def check_file(path: Path) -> None:
    if path.is_dir():
        raise UsageError(f"{path}: is a directory, expected a text file")
    if not path.is_file():
        raise UsageError(f"{path}: no such file")


def read_utf8(path: Path) -> str:
    """The file's text; a UTF-8 byte-order mark (Windows editors add one) is not text."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        raise UsageError(
            f"{path}: line {line} is not UTF-8 (byte 0x{data[error.start]:02x}); "
            "save the file as UTF-8"
        ) from None


def prediction_record(prediction: Prediction) -> dict:
    record = {
        "label": prediction.label,
        "scores": {label: round(prediction.scores[label], 6) for label in LABELS},
        "spans": [{"start": s, "end": e, "term": t} for s, e, t in prediction.spans],
    }
    if prediction.attributions:
        record["attributions"] = [
            {"start": s, "end": e, "weight": round(w, 4)} for s, e, w in prediction.attributions
        ]
    return record


def emit(text: str, prediction: Prediction, as_json: bool, extra: dict | None = None) -> None:
    if as_json:
        print(to_json({**(extra or {}), "text": text, **prediction_record(prediction)}))
        return
    tty = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    label = f"{prediction.label:<8}"
    if tty:
        label = f"\033[{COLOURS[prediction.label]}m{label}\033[0m"
    print(f"{label} {prediction.scores[prediction.label]:.2f}  {highlight(text, prediction, tty)}")
    if prediction.spans and not tty:
        terms = "; ".join(text[s:e].translate(CONTROLS) for s, e, _ in prediction.spans)
        print(" " * 15 + "terms: " + terms)
    if prediction.attributions:
        words = ", ".join(
            f"{text[s:e].translate(CONTROLS)!r} {w:+.2f}" for s, e, w in prediction.attributions
        )
        print(" " * 15 + "pushed by: " + words)


def highlight(text: str, prediction: Prediction, tty: bool) -> str:
    """The text for the terminal: control characters escaped, terms underlined on a tty."""
    if not tty:
        return text.translate(CONTROLS)
    pieces, position = [], 0
    for start, end, _ in prediction.spans:
        pieces += [
            text[position:start].translate(CONTROLS),
            f"\033[1;4m{text[start:end].translate(CONTROLS)}\033[0m",
        ]
        position = end
    return "".join(pieces) + text[position:].translate(CONTROLS)


if __name__ == "__main__":
    sys.exit(main())
