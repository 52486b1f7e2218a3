"""Reading and writing the files a frozen program is applied to, shared by every engine of ``efe.apply``.

One file or a directory of Parquet or CSV part files in, Parquet or CSV out; kept apart from the
engines so that ``efe.apply`` (which picks one) and the engines (which use these) import one way.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Iterator

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from efe.core.errors import EfeError
from efe.core.config import conf_section
from efe.frozen.freeze import input_schema
from efe.frozen.transformer import coerce_to_schema

PARQUET, CSV = (".parquet", ".pq"), (".csv", ".tsv", ".gz", ".txt")


class ApplyError(EfeError):
    """An input, output or engine ``efe.apply`` cannot use."""


class EmptyInputError(ApplyError):
    """An input file with nothing in it (not even a CSV header line)."""


def apply_defaults() -> dict:
    """``conf/apply.yaml``: chunk_rows, blocksize, check_rows (an engine option overrides each)."""
    return conf_section("apply")


def option(options: dict, key: str) -> object:
    """An engine option as given (command line or API), else its default from ``conf/apply.yaml``."""
    value = options.get(key)
    return apply_defaults()[key] if value in (None, "") else value


def natural_key(name: str) -> list:
    """part.2 before part.10, as Dask orders part files."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def input_files(path: Path) -> list[Path]:
    """The file itself, or a directory's Parquet/CSV part files in natural order."""
    if not path.exists():
        raise ApplyError(f"input '{path}' does not exist")
    if path.is_file():
        return [path]
    files = sorted((p for p in path.iterdir() if p.is_file() and not p.name.startswith(("_", "."))
                    and p.suffix.lower() in PARQUET + CSV), key=lambda p: natural_key(p.name))
    if not files:
        raise ApplyError(f"directory '{path}' holds no .parquet or .csv files")
    if len({p.suffix.lower() in PARQUET for p in files}) > 1:
        raise ApplyError(f"directory '{path}' mixes Parquet and CSV files; keep one format")
    return files


def file_format(path: Path) -> str:
    """'parquet' or 'csv' for a file, or for a directory's part files."""
    suffix = input_files(path)[0].suffix.lower() if path.exists() else path.suffix.lower()
    if suffix in PARQUET:
        return "parquet"
    if suffix in CSV:
        return "csv"
    raise ApplyError(f"unsupported input type '{suffix}'; use .csv or .parquet")


def csv_sep(path: Path) -> str:
    return "\t" if path.suffix.lower() == ".tsv" else ","


def by_header(files: list[Path]) -> dict[tuple[str, tuple[str, ...]], list[Path]]:
    """CSV files grouped by (separator, header): a distributed reader takes one header per read."""
    groups: dict[tuple[str, tuple[str, ...]], list[Path]] = {}
    for path in files:
        header = tuple(str(c) for c in pd.read_csv(path, nrows=0, sep=csv_sep(path)).columns)
        groups.setdefault((csv_sep(path), header), []).append(path)
    return groups


def head(path: Path, rows: int) -> pd.DataFrame:
    """The first ``rows`` rows of one input file as pandas reads them, or an error naming an empty file."""
    if path.stat().st_size == 0:
        raise EmptyInputError(f"input file '{path.name}' is empty")
    if path.suffix.lower() in PARQUET:
        parquet = pq.ParquetFile(path)
        batch = next(parquet.iter_batches(batch_size=rows), None)
        return (batch if batch is not None else parquet.schema_arrow.empty_table()).to_pandas()
    try:
        return pd.read_csv(path, nrows=rows, sep=csv_sep(path))
    except pd.errors.EmptyDataError:
        raise EmptyInputError(f"input file '{path.name}' is empty (no header line)") from None


def check_input(source: Path, schema: list[dict], rows: int) -> list[Path]:
    """The input's files, each checked BY NAME against the frozen input schema before any engine runs.

    The one input check of every engine (pandas, Dask, Spark): the first ``rows`` rows of each file
    go through ``coerce_to_schema``, so a missing, renamed or retyped column, or an empty file, is
    refused with one line naming the file, whichever engine reads it afterwards.
    """
    files = input_files(source)
    for path in files:
        coerce_to_schema(head(path, rows), schema, where=f"'{path.name}'")
    return files


def read_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    for part in input_files(path):
        suffix = part.suffix.lower()
        if suffix in PARQUET:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=rows):
                yield batch.to_pandas()
        elif suffix in CSV:
            yield from pd.read_csv(part, chunksize=rows, sep="\t" if suffix == ".tsv" else ",")
        else:
            raise ApplyError(f"unsupported input type '{part.suffix}'; use .csv or .parquet")


class ChunkWriter:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.parquet = path.suffix.lower() in (".parquet", ".pq")
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, frame: pd.DataFrame) -> None:
        if self.parquet:
            table = pa.Table.from_pandas(frame, preserve_index=False)
            if self.writer is None:
                self.writer = pq.ParquetWriter(self.path, table.schema)
            else:
                table = table.cast(self.writer.schema)
            self.writer.write_table(table)
        else:
            frame.to_csv(self.path, mode="a" if self.rows else "w", header=not self.rows, index=False)
        self.rows += len(frame)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def settle_output_schema(transformer, source: Path, rows: int = 1000) -> list[dict]:
    """The output schema: the manifest's, or (older frozen programs) that of the input's first rows."""
    if transformer.output_schema is None:
        settle_output_schema_from(transformer, next(read_chunks(source, rows)), f"the first rows of '{source.name}'")
    return transformer.output_schema


def settle_output_schema_from(transformer, head: pd.DataFrame, where: str) -> list[dict]:
    """The output schema: the manifest's, or (older frozen programs) that of ``head`` transformed."""
    if transformer.output_schema is None:
        transformer.output_schema = input_schema(transformer(head, where=where))
        transformer.close()
    return transformer.output_schema
