"""A frozen feature program inside your own Spark job: ``efe.spark.transform(df, frozen)``.

::

    from pyspark.sql import SparkSession
    import efe.spark

    spark = SparkSession.builder.getOrCreate()          # your session, your master and settings
    df = spark.read.parquet("s3://bucket/big/")          # any DataFrame holding the program's input columns
    features = efe.spark.transform(df, "runs/tab/churn/<timestamp>")   # a run directory or its frozen/
    features.write.parquet("s3://bucket/features/")

``transform`` is lazy: it checks ``df``'s columns against the frozen input schema by name (a
missing or renamed column is refused at once, with the pandas engine's message), then returns
``mapInPandas`` over the program's input columns into the manifest's output schema. On the
executors each Arrow batch (``spark.sql.execution.arrow.maxRecordsPerBatch`` rows, your setting)
runs in the sandbox with the fitted state, broadcast once and never refitted; your session's
settings are left as they are. Rows keep their order within a partition. Executors need efe and
its dependencies (a wheel or ``--py-files``, see README "Beyond one machine").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from efe.apply.spark_engine import transform_frame


def transform(df: Any, frozen: str | Path, sandboxed: bool = True) -> Any:
    """The frozen program's output columns for every row of the Spark DataFrame ``df`` (lazy)."""
    return transform_frame(df, frozen, sandboxed)
