"""engine=spark for ``python -m efe.apply``: the frozen transformer over Arrow batches with ``mapInPandas``.

The input is read with the schema the frozen manifest records, the output schema is the manifest's
too, and the transformer (source, fitted state, schemas) is broadcast once; partitions are never
refitted. Spark does not keep the input's row order when it packs files into partitions, so rows
are ordered by (file, position) before the transform: the output's parts hold the input's rows in
order, as the pandas engine writes them. PySpark is an optional dependency (``pip install
'efe[spark]'``, and Java), imported inside the functions so that efe imports without it.
"""

from __future__ import annotations

import os
import sys
import uuid
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from efe.apply.io import ApplyError, file_format, input_files, settle_output_schema
from efe.apply.partition import PartitionTransformer
from efe.frozen.freeze import load_frozen

_SPARK_TYPES = {"int8": "ByteType", "int16": "ShortType", "int32": "IntegerType", "int64": "LongType",
                "float32": "FloatType", "float64": "DoubleType", "bool": "BooleanType",
                "object": "StringType", "str": "StringType", "string": "StringType"}
_ON_WORKER: dict[str, PartitionTransformer] = {}  # job key -> transformer, per Python worker process


def spark_schema(schema: list[dict]) -> Any:
    """A Spark StructType for a manifest schema, or an error naming the column Spark cannot hold."""
    # lazy: heavy optional dependency (pyspark)
    from pyspark.sql import types as T

    fields = []
    for col in schema:
        kind = _SPARK_TYPES.get(col["dtype"])
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


def _session(options: dict) -> tuple[Any, bool]:
    try:  # lazy: heavy optional dependency (pyspark), only this engine needs it
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise ApplyError(f"engine=spark needs PySpark and Java: pip install 'efe[spark]' ({exc})") from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        return active, False
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # Python workers need this interpreter's packages
    builder = (SparkSession.builder.master(options.get("spark_master") or "local[*]").appName("efe.apply")
               .config("spark.ui.showConsoleProgress", "false"))
    return builder.getOrCreate(), True


def apply_spark(frozen_dir: Path, source: Path, output: Path, sandboxed: bool, options: dict) -> int:
    # lazy: heavy optional dependency (pyspark)
    from pyspark.sql import functions as F

    transformer = PartitionTransformer(load_frozen(frozen_dir), sandboxed)
    files = input_files(source)
    settle_output_schema(transformer, source)
    in_schema, out_schema = spark_schema(transformer.input_schema), spark_schema(transformer.output_schema)
    spark, owned = _session(options)
    # Arrow batches of chunk_rows rows, as the pandas engine's chunks: fewer sandbox round trips
    spark.conf.set("spark.sql.execution.arrow.maxRecordsPerBatch", str(int(options.get("chunk_rows", 50_000))))
    try:
        paths = [str(p) for p in files]
        if file_format(source) == "parquet":
            frame = spark.read.schema(in_schema).parquet(*paths)
        else:
            frame = spark.read.schema(in_schema).option("header", True).csv(paths)
        rank = F.create_map(*[F.lit(x) for i, p in enumerate(files) for x in (p.name, i)])
        frame = (frame.withColumn("_efe_file", rank[F.col("_metadata.file_name")])
                 .withColumn("_efe_row", F.monotonically_increasing_id())
                 .orderBy("_efe_file", "_efe_row").drop("_efe_file", "_efe_row"))
        if options.get("partitions"):
            frame = frame.coalesce(int(options["partitions"]))
        shared = spark.sparkContext.broadcast(transformer)
        out = frame.mapInPandas(_transform_batches(shared, uuid.uuid4().hex), out_schema)
        writer = out.write.mode("overwrite")
        if output.suffix.lower() in (".csv", ".tsv"):
            writer.option("header", True).csv(str(output))
        else:
            writer.parquet(str(output))
        shared.unpersist()
        return int(spark.read.schema(out_schema).parquet(str(output)).count()) \
            if output.suffix.lower() not in (".csv", ".tsv") else int(frame.count())
    finally:
        transformer.close()
        if owned:
            spark.stop()
