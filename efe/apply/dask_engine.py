"""engine=dask for ``python -m efe.apply`` and ``efe.dask.transform``: the frozen transformer mapped over
``dask.dataframe`` partitions.

Input files are split by size (``blocksize=``, default in ``conf/apply.yaml``: CSV in byte blocks,
Parquet by row groups up to that size), and each partition reaches the sandbox in slices of at
most ``chunk_rows`` rows, so memory stays flat and one sandbox call has a bounded size. Every
input file is checked first against the manifest's input schema by name (``efe.apply.io.check_input``,
the pandas engine's check). The transformer (source, fitted state, schemas) enters the graph once
as a delayed object, so a distributed scheduler ships it to each worker once; partitions are never
refitted. Dask is an optional dependency (``pip install 'efe[dask]'``), imported inside the
functions so that efe imports without it.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pandas as pd

from efe.apply.io import (ApplyError, by_header, check_input, file_format, option, read_chunks,
                          settle_output_schema, settle_output_schema_from)
from efe.apply.partition import PartitionTransformer
from efe.core.errors import EfeError
from efe.frozen.freeze import load_frozen
from efe.frozen.transformer import coerce_to_schema
from efe.rundir.paths import frozen_dir_of


class DaskApplyError(EfeError):
    """Dask could not read the input or run the frozen program; the first line of its reason."""


def _dask() -> tuple[Any, Any]:
    try:  # lazy: heavy optional dependency (dask), only this engine needs it
        import dask
        import dask.dataframe as dd
    except ImportError as exc:
        raise ApplyError(f"engine=dask needs Dask: pip install 'efe[dask]' ({exc})") from exc
    return dask, dd


def _transform_partition(frame: pd.DataFrame, transformer: PartitionTransformer, rows: int) -> pd.DataFrame:
    return transformer.in_chunks(frame, rows, where="a Dask partition")


def _csv_dtypes(schema: list[dict]) -> dict[str, str]:
    """Pin float and text columns to the frozen dtypes (integers are inferred, as pandas does)."""
    return {c["name"]: c["dtype"] for c in schema if c["dtype"].startswith("float") or c["dtype"] == "object"}


def _blocksize(options: dict) -> int:
    # lazy: heavy optional dependency (dask)
    from dask.utils import parse_bytes

    value = option(options, "blocksize")
    try:
        return int(parse_bytes(value))
    except (TypeError, ValueError):
        raise EfeError(f"blocksize={value} is not a size; give bytes or e.g. 64MB") from None


def _map(ddf: Any, transformer: PartitionTransformer, rows: int) -> Any:
    dask, _ = _dask()
    return ddf.map_partitions(_transform_partition, dask.delayed(transformer, pure=True), rows,
                              meta=transformer.empty_output(), enforce_metadata=False)


def transform_frame(ddf: Any, frozen: str | Path, sandboxed: bool = True, chunk_rows: int | None = None) -> Any:
    """``efe.dask.transform``: a lazy Dask DataFrame of the frozen program's output columns."""
    transformer = PartitionTransformer(load_frozen(frozen_dir_of(frozen)), sandboxed)
    coerce_to_schema(ddf._meta, transformer.input_schema, where="the Dask DataFrame")  # names, before any task
    if transformer.output_schema is None:  # frozen before manifests held it: the first rows decide
        head = ddf.head(int(option({}, "check_rows")), npartitions=-1)
        settle_output_schema_from(transformer, head, "the first rows of the Dask DataFrame")
    return _map(ddf, transformer, int(option({"chunk_rows": chunk_rows}, "chunk_rows")))


def _read(dd: Any, files: list[Path], source: Path, transformer: PartitionTransformer, blocksize: int) -> Any:
    """The input files as one Dask DataFrame of the program's columns, taken by name."""
    names = [c["name"] for c in transformer.input_schema]
    if file_format(source) == "parquet":
        # one partition per row group, or several small row groups together up to blocksize
        return dd.read_parquet([str(p) for p in files], split_row_groups="infer", blocksize=blocksize)[names]
    # one read per distinct header (Dask would take every file's columns from the first file's header)
    frames = []
    for (sep, _), group in by_header(files).items():
        compressed = any(p.suffix.lower() == ".gz" for p in group)  # a gzip stream cannot be split
        frames.append(dd.read_csv([str(p) for p in group], blocksize=None if compressed else blocksize, sep=sep,
                                  dtype=_csv_dtypes(transformer.input_schema))[names])
    return frames[0] if len(frames) == 1 else dd.concat(frames)


def name_the_bad_rows(files: list[Path], schema: list[dict], rows: int) -> None:
    """Raise the pandas engine's one-line error (column, file, rows) for the first rows that do not fit
    the frozen input schema; return if every row fits."""
    for path in files:
        start = 0
        for chunk in read_chunks(path, rows):
            coerce_to_schema(chunk, schema, where=f"'{path.name}' (rows {start}-{start + len(chunk) - 1})")
            start += len(chunk)


def apply_dask(frozen_dir: Path, source: Path, output: Path, sandboxed: bool, options: dict) -> int:
    dask, dd = _dask()
    transformer = PartitionTransformer(load_frozen(frozen_dir), sandboxed)
    files = check_input(source, transformer.input_schema, int(option(options, "check_rows")))
    settle_output_schema(transformer, source)
    blocksize, rows = _blocksize(options), int(option(options, "chunk_rows"))
    existed = output.exists()  # before Dask creates the directory (to_parquet does, even with compute=False)
    client = None
    if options.get("dask_address"):
        # lazy: heavy optional dependency (dask.distributed)
        from distributed import Client

        client = Client(options["dask_address"])
    try:
        with dask.config.set({"dataframe.convert-string": False}):  # keep pandas' object text columns
            frame = _read(dd, files, source, transformer, blocksize)
            if options.get("partitions"):
                frame = frame.repartition(npartitions=int(options["partitions"]))
            out = _map(frame, transformer, rows)
            output.parent.mkdir(parents=True, exist_ok=True)
            if output.suffix.lower() in (".csv", ".tsv"):
                write = out.to_csv(str(output / "part-*.csv"), index=False, compute=False,
                                   name_function=lambda i: f"{i:05d}")
            else:
                write = out.to_parquet(str(output), write_index=False, overwrite=True, compute=False,
                                       name_function=lambda i: f"part-{i:05d}.parquet")
            try:
                _, lengths = dask.compute(write, out.map_partitions(len))
            except BaseException as exc:
                if not existed:  # a failed apply leaves no half-written directory of part files
                    shutil.rmtree(output, ignore_errors=True)
                if isinstance(exc, EfeError) or not isinstance(exc, (ValueError, TypeError)):
                    raise
                # Dask's report names neither the file nor the column (a value past the rows checked up
                # front): find them the pandas engine's way; else keep the first line of Dask's report
                name_the_bad_rows(files, transformer.input_schema, rows)
                first = next((line for line in str(exc).splitlines() if line.strip()), type(exc).__name__)
                raise DaskApplyError(f"engine=dask failed on '{source.name}': {first.strip()}") from None
    finally:
        transformer.close()
        if client is not None:
            client.close()
    return int(sum(lengths))
