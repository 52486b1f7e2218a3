"""A frozen feature program inside your own Dask job: ``efe.dask.transform(ddf, frozen)``.

::

    import dask.dataframe as dd
    import efe.dask

    ddf = dd.read_parquet("big/")                        # any Dask DataFrame with the program's input columns
    features = efe.dask.transform(ddf, "runs/tab/churn/<timestamp>")   # a run directory or its frozen/
    features.to_parquet("features/")                     # or .compute(), on your scheduler

``transform`` is lazy: it checks ``ddf``'s columns against the frozen input schema by name (a
missing or renamed column is refused at once, with the pandas engine's message), then returns
``map_partitions`` with ``meta`` = the manifest's output schema. Each partition runs in the
sandbox in slices of at most ``chunk_rows`` rows (default in ``conf/apply.yaml``) with the fitted
state, which enters the graph once and is never refitted. Partitions keep their rows' order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from efe.apply.dask_engine import transform_frame


def transform(ddf: Any, frozen: str | Path, sandboxed: bool = True, chunk_rows: int | None = None) -> Any:
    """The frozen program's output columns for every row of the Dask DataFrame ``ddf`` (lazy)."""
    return transform_frame(ddf, frozen, sandboxed, chunk_rows)
