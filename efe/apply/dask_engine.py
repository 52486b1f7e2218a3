"""engine=dask for ``python -m efe.apply``: the frozen transformer mapped over ``dask.dataframe`` partitions.

The transformer (source, fitted state, schemas) enters the graph once as a delayed object, so a
distributed scheduler ships it to each worker once; partitions are never refitted. Dask is an
optional dependency (``pip install 'efe[dask]'``), imported inside the functions so that efe
imports without it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from efe.apply.io import ApplyError, file_format, input_files, settle_output_schema
from efe.apply.partition import PartitionTransformer
from efe.core.errors import EfeError
from efe.frozen.freeze import load_frozen


def _transform_partition(frame: pd.DataFrame, transformer: PartitionTransformer) -> pd.DataFrame:
    return transformer(frame, where="a Dask partition")


def _csv_dtypes(schema: list[dict]) -> dict[str, str]:
    """Pin float and text columns to the frozen dtypes (integers are inferred, as pandas does)."""
    return {c["name"]: c["dtype"] for c in schema if c["dtype"].startswith("float") or c["dtype"] == "object"}


def apply_dask(frozen_dir: Path, source: Path, output: Path, sandboxed: bool, options: dict) -> int:
    try:  # lazy: heavy optional dependency (dask), only this engine needs it
        import dask
        import dask.dataframe as dd
    except ImportError as exc:
        raise ApplyError(f"engine=dask needs Dask: pip install 'efe[dask]' ({exc})") from exc

    transformer = PartitionTransformer(load_frozen(frozen_dir), sandboxed)
    files = [str(p) for p in input_files(source)]
    settle_output_schema(transformer, source)
    client = None
    if options.get("dask_address"):
        # lazy: heavy optional dependency (dask.distributed)
        from distributed import Client

        client = Client(options["dask_address"])
    try:
        with dask.config.set({"dataframe.convert-string": False}):  # keep pandas' object text columns
            if file_format(source) == "parquet":
                frame = dd.read_parquet(files)
            else:
                frame = dd.read_csv(files, blocksize=None, dtype=_csv_dtypes(transformer.input_schema))
            if options.get("partitions"):
                frame = frame.repartition(npartitions=int(options["partitions"]))
            out = frame.map_partitions(_transform_partition, dask.delayed(transformer, pure=True),
                                       meta=transformer.empty_output(), enforce_metadata=False)
            output.parent.mkdir(parents=True, exist_ok=True)
            if output.suffix.lower() in (".csv", ".tsv"):
                write = out.to_csv(str(output / "part-*.csv"), index=False, compute=False,
                                   name_function=lambda i: f"{i:05d}")
            else:
                write = out.to_parquet(str(output), write_index=False, overwrite=True, compute=False,
                                       name_function=lambda i: f"part-{i:05d}.parquet")
            try:
                _, lengths = dask.compute(write, out.map_partitions(len))
            except (ValueError, TypeError) as exc:
                if isinstance(exc, EfeError):
                    raise
                # pandas reading a partition with the frozen dtypes (text where a number was frozen, ...)
                raise ApplyError(f"engine=dask could not read the input as the frozen program's columns: "
                                 f"{type(exc).__name__}: {exc}") from exc
    finally:
        transformer.close()
        if client is not None:
            client.close()
    return int(sum(lengths))
