"""Score a whole file of texts: CSV, JSON lines or Parquet in, JSON lines or Parquet out.

Every input row comes out with its own fields and the prediction's columns added:
`label` (at the model's operating point), one probability per label (`neutral`,
`quoted`, `adopted`), the lexicon spans as JSON (`spans`) and, with explanations, the
attributions as JSON (`attributions`); `--prediction-prefix` puts a prefix on those names,
and a row that already has one of them is refused, never overwritten. The Spark path
(`classifier.spark`) writes the same columns.

Rows are read and scored in chunks, so memory stays flat whatever the file size. With an
output file the rows go to a temporary file of their own beside it, renamed into place
only when every row is scored (two runs never share a partial file); without one they
stream to stdout as JSON lines, and a run that stops early says how many it wrote.
Every problem with a row is a `BatchError` naming the file, the line (or row) and the
field, raised before anything of that row is written.

Deliberately left out: the command line (`classifier.cli`) and any model code.
"""

from __future__ import annotations

import csv
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from classifier.bundle import LABELS
from classifier.text import text_problem

CHUNK_ROWS = 256  # rows scored at once: big enough to batch, small in memory
INPUT_FORMATS = (".csv", ".jsonl", ".parquet")
OUTPUT_FORMATS = (".jsonl", ".parquet")
# JSON escapes C0 control characters itself but passes C1 ones (an 8-bit CSI, \x9b)
# through, which a terminal would obey.
JSON_CONTROLS = {c: f"\\u{c:04x}" for c in range(0x7F, 0xA0)}
csv.field_size_limit(2**31 - 1)  # a sentence may be a long one: the API takes megabytes


class BatchError(ValueError):
    """A problem with a batch file or one of its rows; the message says where."""


def to_json(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False).translate(JSON_CONTROLS)


def prediction_columns(prefix: str = "", explain: bool = False) -> list[str]:
    names = ["label", *LABELS, "spans", *(["attributions"] if explain else [])]
    return [prefix + name for name in names]


def prediction_row(prediction, prefix: str = "", explain: bool = False) -> dict:
    """A prediction as the flat columns every batch output has."""
    row = {
        f"{prefix}label": prediction.label,
        **{prefix + label: prediction.scores[label] for label in LABELS},
        f"{prefix}spans": json.dumps(
            [{"start": s, "end": e, "term": t} for s, e, t in prediction.spans],
            ensure_ascii=False,
        ),
    }
    if explain:
        row[f"{prefix}attributions"] = json.dumps(
            [{"start": s, "end": e, "weight": round(w, 4)} for s, e, w in prediction.attributions]
        )
    return row


def input_format(path: Path) -> str:
    """The format of a batch file, or of the part files of a folder."""
    if path.is_dir():
        suffixes = {
            p.suffix.lower()
            for p in path.iterdir()
            if p.is_file() and not p.name.startswith((".", "_"))
        }
        if len(suffixes) != 1 or not suffixes <= set(INPUT_FORMATS):
            raise BatchError(
                f"{path}: expected a folder of part files of one format {INPUT_FORMATS}, "
                f"found {sorted(suffixes) or 'no files'}"
            )
        return suffixes.pop()
    if path.suffix.lower() not in INPUT_FORMATS:
        raise BatchError(
            f"{path}: expected {', '.join(INPUT_FORMATS)}, found {path.suffix or 'none'}"
        )
    return path.suffix.lower()


def check_paths(path: Path, output: Path | None) -> None:
    """Everything about the paths that can be checked before a model loads."""
    if not path.exists():
        raise BatchError(f"{path}: no such file or folder")
    input_format(path)
    if output is None:
        return
    if output.suffix.lower() not in OUTPUT_FORMATS:
        raise BatchError(
            f"--output {output}: expected a name ending in {' or '.join(OUTPUT_FORMATS)}"
        )
    if output.resolve() == path.resolve():
        raise BatchError("--output must not be the --input file")
    if output.is_dir():
        raise BatchError(f"--output {output}: is a directory, expected a file name")
    if output.exists() and not output.is_file():
        raise BatchError(f"--output {output}: expected a regular file (it is replaced at the end)")
    if not output.parent.is_dir():
        raise BatchError(f"--output {output}: no such directory {output.parent}")


def parts(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(
            p for p in path.iterdir() if p.is_file() and not p.name.startswith((".", "_"))
        )
    return [path]


def read_rows(path: Path, text_column: str) -> Iterator[tuple[str, dict]]:
    """(where, row) for each row of a file or folder; each text is checked on the way."""
    for part in parts(path):
        fmt = part.suffix.lower()
        if fmt == ".parquet":
            rows = parquet_rows(part)
        elif fmt == ".jsonl":
            rows = jsonl_rows(part, lines(part))
        else:
            rows = csv_rows(part, lines(part), text_column)
        for where, row in rows:
            if text_column not in row:
                raise BatchError(
                    f"{where} has no field {text_column!r}; fields are: "
                    f"{', '.join(map(str, row)) or 'none'} (choose one with --text-column)"
                )
            if problem := text_problem(row[text_column]):
                raise BatchError(f"{where}, field {text_column!r}: {problem}")
            yield where, row


def lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                # "CSV UTF-8" from Excel starts with a byte-order mark: not part of the header.
                yield number, raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                raise BatchError(
                    f"{path}: line {number} is not UTF-8 (byte 0x{raw[error.start]:02x}); "
                    "save the file as UTF-8"
                ) from None


def jsonl_rows(path: Path, numbered_lines) -> Iterator[tuple[str, dict]]:
    for number, line in numbered_lines:
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as error:
            raise BatchError(
                f"{path}: line {number} is not valid JSON ({error.msg} at column {error.colno})"
            ) from None
        except RecursionError:
            raise BatchError(f"{path}: line {number} is nested too deeply to be a row") from None
        if not isinstance(row, dict):
            raise BatchError(f"{path}: line {number}: expected a JSON object")
        yield f"{path}: line {number}", row


def csv_rows(path: Path, numbered_lines, text_column: str) -> Iterator[tuple[str, dict]]:
    reader = csv.DictReader(
        (line for _, line in numbered_lines),
        strict=True,  # a stray quote must not eat rows
    )
    try:
        fieldnames = reader.fieldnames
        if fieldnames is None:
            raise BatchError(f"{path}: expected a header row, found an empty file")
        repeated = sorted({name for name in fieldnames if fieldnames.count(name) > 1})
        if repeated:
            raise BatchError(f"{path}: the header repeats the column(s) {repeated}; rename them")
        if text_column not in fieldnames:
            raise BatchError(
                f"{path}: no column {text_column!r}; columns are: {', '.join(fieldnames)} "
                "(choose one with --text-column)"
            )
        for row in reader:
            if None in row:  # DictReader's key for fields beyond the header
                raise BatchError(
                    f"{path}: line {reader.line_num} has more fields than the header's "
                    f"{len(fieldnames)}"
                )
            yield f"{path}: line {reader.line_num}", row
    except csv.Error as error:
        raise BatchError(f"{path}: line {reader.line_num}: {error}") from None


def parquet_rows(path: Path) -> Iterator[tuple[str, dict]]:
    import pyarrow.parquet as pq

    try:
        file = pq.ParquetFile(path)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError, ...
        raise BatchError(f"{path}: not a readable Parquet file ({error})") from None
    number = 0
    for batch in file.iter_batches(batch_size=CHUNK_ROWS):
        for row in batch.to_pylist():
            number += 1
            yield f"{path}: row {number}", row


def count_rows(path: Path) -> int:
    total = 0
    for part in parts(path):
        if part.suffix.lower() == ".parquet":
            import pyarrow.parquet as pq

            total += pq.ParquetFile(part).metadata.num_rows
        else:
            with part.open("rb") as handle:
                total += sum(
                    chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b"")
                )
            total -= part.suffix.lower() == ".csv"
    return total


class ParquetSink:
    """Rows into a Parquet file, chunk by chunk, with the first chunk's schema."""

    def __init__(self, handle):
        self.handle, self.writer, self.schema = handle, None, None

    def write(self, rows: list[dict]) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            table = pa.Table.from_pylist(rows, schema=self.schema)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise BatchError(f"rows do not fit the columns of the first rows: {error}") from None
        if self.writer is None:
            self.schema = table.schema
            self.writer = pq.ParquetWriter(self.handle, self.schema)
        self.writer.write_table(table)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


class JsonlSink:
    def __init__(self, handle):
        self.handle = handle

    def write(self, rows: list[dict]) -> None:
        self.handle.write("".join(to_json(row) + "\n" for row in rows))
        if self.handle is sys.stdout:
            self.handle.flush()  # streamed: what was scored is out before the next chunk

    def close(self) -> None:
        pass


def score_file(
    model,
    path: Path,
    text_column: str,
    output: Path | None,
    prefix: str = "",
    explain: bool = False,
) -> int:
    """Score every row of `path` into `output` (atomically) or stdout; return the row count."""
    from tqdm import tqdm

    added = prediction_columns(prefix, explain)
    if output is None:
        handle, temporary, sink = sys.stdout, None, JsonlSink(sys.stdout)
    else:
        # A name of its own beside the target: two runs never share a partial file, and
        # the rename at the end is atomic on the target's own file system.
        binary = output.suffix.lower() == ".parquet"
        handle = tempfile.NamedTemporaryFile(
            "wb" if binary else "w", encoding=None if binary else "utf-8", dir=output.parent,
            prefix=f".{output.name}.", suffix=".partial", delete=False,
        )  # fmt: skip
        temporary = Path(handle.name)
        sink = ParquetSink(handle) if binary else JsonlSink(handle)
    scored = 0

    def flush(chunk: list[tuple[str, dict]]) -> int:
        predictions = model.predict([row[text_column] for _, row in chunk], explain=explain)
        rows = []
        for (where, row), prediction in zip(chunk, predictions, strict=True):
            clash = sorted(set(added) & set(row))
            if clash:
                raise BatchError(
                    f"{where} already has the field(s) {clash}; add a prefix to the added "
                    "columns with --prediction-prefix"
                )
            rows.append({**row, **prediction_row(prediction, prefix, explain)})
        sink.write(rows)
        return len(rows)

    try:
        with tqdm(total=count_rows(path), unit="row", desc="scoring", disable=None) as progress:
            chunk: list[tuple[str, dict]] = []
            for item in read_rows(path, text_column):
                chunk.append(item)
                if len(chunk) == CHUNK_ROWS:
                    scored += flush(chunk)
                    progress.update(len(chunk))
                    chunk = []
            if chunk:
                scored += flush(chunk)
                progress.update(len(chunk))
        sink.close()
    except BaseException as error:
        if temporary:
            handle.close()
            temporary.unlink(missing_ok=True)
            print(f"nothing written to {output}", file=sys.stderr)
        elif not isinstance(error, BrokenPipeError):
            print(f"stopped after writing {scored} rows to stdout", file=sys.stderr)
        raise
    if temporary:
        handle.close()
        os.replace(temporary, output)
        print(f"scored {scored} rows into {output}", file=sys.stderr)
    return scored
