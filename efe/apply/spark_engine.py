"""engine=spark for ``python -m efe.apply`` and ``efe.spark.transform``: the frozen transformer over Arrow
batches with ``mapInPandas``.

Input columns are taken BY NAME: every input file is first checked against the manifest's input
schema (``efe.apply.io.check_input``, the pandas engine's check and messages), then CSV files are
read with a schema built from each file's own header (manifest types for the program's columns)
and only the program's columns are selected. The output schema is the manifest's; the transformer
(source, fitted state, schemas) is broadcast once and partitions are never refitted.

The session is the user's: an active session is used as it is; otherwise ``getOrCreate()`` picks up
what spark-submit or ``spark-defaults.conf`` set (pyspark itself falls back to ``local[*]`` when
nothing sets a master), and ``.master()`` is called only for an explicit ``spark_master=``. The one
setting ``efe.apply`` changes (Arrow batch rows = ``chunk_rows``) is restored afterwards.

Row order: within a partition rows keep the input's order; the order of partitions (hence of the
output's part files) is Spark's, which packs file splits by size. There is no global sort (a full
shuffle); keep a key column to order by. PySpark is an optional dependency (``pip install
'efe[spark]'``, and Java), imported inside the functions so that efe imports without it.
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from contextlib import contextmanager
from functools import reduce
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from efe.apply.io import (PARQUET, ApplyError, by_header, check_input, option,
                          settle_output_schema, settle_output_schema_from)
from efe.apply.partition import PartitionTransformer
from efe.core.errors import EfeError
from efe.frozen.freeze import load_frozen
from efe.frozen.transformer import coerce_to_schema
from efe.rundir.paths import frozen_dir_of

_SPARK_TYPES = {"int8": "ByteType", "int16": "ShortType", "int32": "IntegerType", "int64": "LongType",
                "float32": "FloatType", "float64": "DoubleType", "bool": "BooleanType",
                "object": "StringType", "str": "StringType", "string": "StringType"}
_PANDAS_TYPES = {"tinyint": "int8", "smallint": "int16", "int": "int32", "bigint": "int64", "float": "float32",
                 "double": "float64", "boolean": "bool", "string": "object"}
ARROW_BATCH = "spark.sql.execution.arrow.maxRecordsPerBatch"
_ON_WORKER: dict[str, PartitionTransformer] = {}  # job key -> transformer, per Python worker process


class SparkApplyError(EfeError):
    """Spark could not read the input or run the frozen program; the first line of its reason."""


def spark_schema(schema: list[dict], fallback: str | None = None) -> Any:
    """A Spark StructType for a manifest schema, or an error naming the column Spark cannot hold."""
    # lazy: heavy optional dependency (pyspark)
    from pyspark.sql import types as T

    fields = []
    for col in schema:
        kind = _SPARK_TYPES.get(col["dtype"], fallback)
        if kind is None:
            raise ApplyError(f"column '{col['name']}' has dtype {col['dtype']}, which engine=spark does not "
                             f"map; supported: {', '.join(sorted(_SPARK_TYPES))}")
        fields.append(T.StructField(col["name"], getattr(T, kind)(), True))
    return T.StructType(fields)


def _transform_batches(broadcast: Any, key: str) -> Any:
    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        transformer = _ON_WORKER.get(key)
        if transformer is None:  # first task of this worker process: unpickle the state once
            transformer = _ON_WORKER[key] = broadcast.value
        for batch in batches:
            yield transformer(batch, where="a Spark batch")

    return run


def _map(frame: Any, transformer: PartitionTransformer) -> Any:
    """The program's input columns, by name, through the broadcast transformer, into the output schema."""
    shared = frame.sparkSession.sparkContext.broadcast(transformer)
    names = [c["name"] for c in transformer.input_schema]
    return frame.select(*names).mapInPandas(_transform_batches(shared, uuid.uuid4().hex),
                                            spark_schema(transformer.output_schema))


def transform_frame(df: Any, frozen: str | Path, sandboxed: bool = True) -> Any:
    """``efe.spark.transform``: a lazy Spark DataFrame of the frozen program's output columns."""
    transformer = PartitionTransformer(load_frozen(frozen_dir_of(frozen)), sandboxed)
    columns = pd.DataFrame({f.name: pd.Series([], dtype=_PANDAS_TYPES.get(f.dataType.simpleString(), "object"))
                            for f in df.schema.fields})
    coerce_to_schema(columns, transformer.input_schema, where="the Spark DataFrame")  # names, before any job
    if transformer.output_schema is None:  # frozen before manifests held it: the first rows decide
        names = [c["name"] for c in transformer.input_schema]
        head = df.select(*names).limit(int(option({}, "check_rows"))).toPandas()
        settle_output_schema_from(transformer, head, "the first rows of the Spark DataFrame")
    return _map(df, transformer)


@contextmanager
def spark_session(options: dict) -> Iterator[Any]:
    """The active session as it is, or one from ``getOrCreate()`` (stopped afterwards).

    ``.master()`` only for an explicit ``spark_master=``: spark-submit's ``--master`` and
    ``spark-defaults.conf`` are never overridden.
    """
    try:  # lazy: heavy optional dependency (pyspark), only this engine needs it
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ApplyError(f"engine=spark needs PySpark and Java: pip install 'efe[spark]' ({exc})") from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers need this interpreter's packages
    builder = SparkSession.builder
    if options.get("spark_master"):
        builder = builder.master(str(options["spark_master"])).appName("efe.apply")
    spark = builder.getOrCreate()
    try:
        yield spark
    finally:
        spark.stop()


@contextmanager
def session_settings(spark: Any, settings: dict[str, str]) -> Iterator[None]:
    """Session settings changed for a block, and every one restored (or unset) afterwards."""
    before = {key: spark.conf.get(key, None) for key in settings}
    try:
        for key, value in settings.items():
            spark.conf.set(key, value)
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)


def _read(spark: Any, files: list[Path], schema: list[dict]) -> Any:
    """The input files as one DataFrame of the program's columns, taken by name."""
    names = [c["name"] for c in schema]
    paths = [str(p) for p in files]
    if files[0].suffix.lower() in PARQUET:
        return spark.read.parquet(*paths).select(*names)
    # CSV: one read per distinct header, each with a schema in that header's order (manifest types for
    # the program's columns, text for the others); enforceSchema=false makes Spark check the header too
    types = {c["name"]: c for c in schema}
    frames = []
    for (sep, header), group in by_header(files).items():
        file_schema = spark_schema([types.get(h, {"name": h, "dtype": "object"}) for h in header], "StringType")
        frames.append(spark.read.schema(file_schema).option("header", True).option("enforceSchema", False)
                      .option("mode", "FAILFAST").option("sep", sep).csv([str(p) for p in group]).select(*names))
    return reduce(lambda a, b: a.unionByName(b), frames)


def _one_line(exc: Exception) -> str:
    """A Spark failure in one line: a Python worker's own error, else Spark's error and its deepest cause."""
    lines = [line.lstrip(": ").rstrip() for line in str(exc).splitlines() if line.strip()]
    raised = re.compile(r"^(?:Caused by: )?[\w.$]*(?:Error|Exception): (.+?)(?:\s+SQLSTATE: \w+)?$")
    start = next((i for i, line in enumerate(lines) if "Traceback (most recent call last)" in line), None)
    if start is not None:  # the program's (or the input check's) own error, raised in a Python worker
        found = [m.group(1) for m in map(raised.match, lines[start + 1:]) if m]
        if found:
            return found[0][:500]
    found = [m.group(1) for m in map(raised.match, lines) if m]
    causes = [m.group(1) for m in map(raised.match, (x for x in lines if x.startswith("Caused by: "))) if m]
    if not found:
        return (lines[0] if lines else type(exc).__name__)[:500]
    reason = found[0] if not causes or causes[-1] in found[0] else f"{found[0]} (cause: {causes[-1]})"
    return reason[:500]


def apply_spark(frozen_dir: Path, source: Path, output: Path, sandboxed: bool, options: dict) -> int:
    transformer = PartitionTransformer(load_frozen(frozen_dir), sandboxed)
    files = check_input(source, transformer.input_schema, int(option(options, "check_rows")))
    settle_output_schema(transformer, source)
    spark_schema(transformer.output_schema)  # an unmappable output dtype fails before Spark starts
    csv_out = output.suffix.lower() in (".csv", ".tsv")
    with spark_session(options) as spark:
        print(f"engine=spark: master {spark.sparkContext.master}", file=sys.stderr, flush=True)
        # lazy: heavy optional dependency (pyspark)
        from pyspark.errors import PySparkException
        from py4j.protocol import Py4JJavaError

        # Arrow batches of chunk_rows rows, as the pandas engine's chunks: fewer sandbox round trips
        with session_settings(spark, {ARROW_BATCH: str(int(option(options, "chunk_rows")))}):
            try:
                frame = _read(spark, files, transformer.input_schema)
                if options.get("partitions"):
                    frame = frame.coalesce(int(options["partitions"]))
                writer = _map(frame, transformer).write.mode("overwrite")
                if csv_out:
                    writer.option("header", True).csv(str(output))
                    return int(spark.read.option("header", True).csv(str(output)).count())
                writer.parquet(str(output))
                return int(spark.read.parquet(str(output)).count())
            except (PySparkException, Py4JJavaError) as exc:
                raise SparkApplyError(f"engine=spark failed on '{source.name}': {_one_line(exc)}") from None
            finally:
                transformer.close()
