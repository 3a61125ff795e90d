"""Score an archive with Apache Spark: the registered pyfunc model inside `spark_udf`.

    classifier score --input archive/ --output scored.parquet --spark [MASTER]

Spark reads CSV (with a header), JSON lines or Parquet, a file or a folder of part files;
MLflow's `mlflow.pyfunc.spark_udf` runs the project's own pyfunc model on every partition
(`env_manager="local"`: the executors use this environment); the result has the columns
of the local path (`classifier.batch`): the input columns, then `label`, one probability
per label and `spans` as JSON, in the input's row order. It is written as a folder of part
files (`scored.parquet/` or `scored.jsonl/`), first under a temporary name beside the
target, renamed into place when Spark has finished; a target that exists is refused.

Rows whose text is not usable are reported before anything is scored, with their row
numbers, as the local path does; nothing is dropped: the output has exactly the input's
rows.

Deliberately left out: cluster set-up (the master URL is Spark's), and explanations.
"""

from __future__ import annotations

import functools
import os
import shutil
import sys
import uuid
from pathlib import Path

from classifier.batch import BatchError, input_format, parts, prediction_columns

ROW_ID = "_framing_row"  # a column of our own, to keep the input order through the UDF
RESULT_TYPE = "label string, neutral double, quoted double, adopted double, spans string"


def spark_session(master: str):
    """A Spark session, or one clear line saying what to install."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise BatchError(
            "--spark needs pyspark: pip install -e '.[spark]' (and a Java runtime, e.g. "
            "Debian's openjdk-17-jre-headless)"
        ) from None
    if not (shutil.which("java") or os.environ.get("JAVA_HOME")):
        raise BatchError(
            "--spark needs a Java runtime: install one (Debian: apt-get install "
            "openjdk-17-jre-headless) or set JAVA_HOME"
        )
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    return (
        SparkSession.builder.master(master)
        .appName("framing-classifier")
        .config("spark.ui.enabled", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .getOrCreate()
    )


def read_frame(spark, path: Path):
    """The rows of a file or folder, in reading order: part files in name order.

    Spark itself would read a folder's files largest first; each part is read on its own
    and the parts are joined in order, which a union keeps.
    """
    fmt = input_format(path)
    frames = []
    for part in parts(path):
        if fmt == ".csv":
            options = {"header": True, "multiLine": True, "escape": '"', "mode": "FAILFAST"}
            frames.append(spark.read.options(**options).csv(str(part)))
        elif fmt == ".jsonl":
            frames.append(spark.read.option("mode", "FAILFAST").json(str(part)))
        else:
            frames.append(spark.read.parquet(str(part)))
    return functools.reduce(lambda a, b: a.unionByName(b, allowMissingColumns=True), frames)


def score_with_spark(
    model: str | None,
    path: Path,
    output: Path | None,
    text_column: str,
    master: str,
    *,
    prefix: str = "",
    threshold: float | None = None,
    fast: bool = True,
    require_term: bool | None = None,
) -> int:
    """Score `path` into `output` with Spark; return the number of rows written."""
    import mlflow
    from pyspark.sql import functions as F
    from pyspark.sql.types import LongType, StructField, StructType

    from classifier.api import locate_model
    from classifier.text import text_problem

    if output is None:
        raise BatchError("--spark writes its result to --output (a .parquet or .jsonl name)")
    if output.suffix.lower() not in (".parquet", ".jsonl"):
        raise BatchError(f"--output {output}: expected a name ending in .parquet or .jsonl")
    if output.exists():
        raise BatchError(f"--output {output}: exists already; Spark writes a new folder")
    if not output.parent.is_dir():
        raise BatchError(f"--output {output}: no such directory {output.parent}")
    if not path.exists():
        raise BatchError(f"{path}: no such file or folder")
    input_format(path)
    model_dir, source = locate_model(model)
    if not (model_dir / "MLmodel").is_file():
        raise BatchError(f"{source}: --spark needs an MLflow model, not a bare bundle")

    spark = spark_session(master)
    frame = read_frame(spark, path)
    if text_column not in frame.columns:
        raise BatchError(
            f"{path}: no column {text_column!r}; columns are: {', '.join(frame.columns)} "
            "(choose one with --text-column)"
        )
    clash = sorted(set(prediction_columns(prefix)) & set(frame.columns))
    if clash:
        raise BatchError(
            f"{path} already has the column(s) {clash}; add a prefix with --prediction-prefix"
        )
    # Row numbers in reading order (files in name order, then rows): they keep the
    # output in the input's order and name the rows that cannot be scored.
    schema = StructType([*frame.schema.fields, StructField(ROW_ID, LongType(), False)])
    frame = spark.createDataFrame(
        frame.rdd.zipWithIndex().map(lambda pair: (*pair[0], pair[1] + 1)), schema
    )
    problem = F.udf(text_problem, "string")
    first = (
        frame.select(ROW_ID, problem(F.col(text_column)).alias("problem"))
        .where(F.col("problem").isNotNull())
        .orderBy(ROW_ID)
        .limit(5)
        .collect()
    )
    if first:
        shown = "; ".join(f"row {row[0]}: {row[1]}" for row in first)
        raise BatchError(f"{path}, field {text_column!r}: {shown}")

    config = {"fast": fast, "threshold": threshold, "require_term": require_term}
    config = {key: value for key, value in config.items() if value is not None}
    classify = mlflow.pyfunc.spark_udf(
        spark, str(model_dir), result_type=RESULT_TYPE, env_manager="local", model_config=config
    )
    result = frame.withColumn("_prediction", classify(F.col(text_column).alias("text")))
    names = ("label", "neutral", "quoted", "adopted", "spans")
    for name in names:
        result = result.withColumn(prefix + name, F.col(f"_prediction.{name}"))
    result = result.drop("_prediction").orderBy(ROW_ID).drop(ROW_ID)
    # Not a hidden name: Spark's readers skip files and folders starting with "." or "_".
    temporary = output.with_name(f"{output.name}.{uuid.uuid4().hex}.partial")
    writer = result.write.mode("error")
    try:
        if output.suffix.lower() == ".parquet":
            writer.parquet(str(temporary))
        else:
            writer.json(str(temporary))
        rows = spark.read.parquet(str(temporary)).count() if output.suffix.lower() == ".parquet" \
            else spark.read.json(str(temporary)).count()  # fmt: skip
        os.replace(temporary, output)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    print(f"scored {rows} rows into {output} with Spark ({master})", file=sys.stderr)
    return rows
