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
from efe.frozen.freeze import input_schema

PARQUET, CSV = (".parquet", ".pq"), (".csv", ".tsv", ".gz", ".txt")


class ApplyError(EfeError):
    """An input, output or engine ``efe.apply`` cannot use."""


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
        head = next(read_chunks(source, rows))
        transformer.output_schema = input_schema(transformer(head, where=f"the first rows of '{source.name}'"))
        transformer.close()
    return transformer.output_schema
