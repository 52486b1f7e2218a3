"""``python -m efe.apply frozen=<dir> input=data.csv output=features.parquet [engine=pandas|dask|spark]``.

engine=pandas (default) reads the input in chunks (CSV chunks or Parquet record batches), checks
each chunk against the manifest's input schema, transforms it in the sandbox with the frozen state
(sent once), and appends it to the output, so memory stays flat as the file grows. engine=dask and
engine=spark do the same per partition on a cluster (``efe.apply_dask``, ``efe.apply_spark``) and
write a directory of part files. Correct chunk by chunk because a frozen program's transform is
row-independent (a gate checks it). The input may be one file or a directory of Parquet or CSV parts.
"""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

USAGE = ("usage: python -m efe.apply frozen=<frozen dir or run dir> input=<.csv|.parquet file or directory> "
         "output=<.parquet|.csv> [engine=pandas|dask|spark] [chunk_rows=50000] [sandbox=true] "
         "[partitions=N] [dask_address=<scheduler>] [spark_master=local[*]]")
ENGINES = ("pandas", "dask", "spark")
PARQUET, CSV = (".parquet", ".pq"), (".csv", ".tsv", ".gz", ".txt")


def natural_key(name: str) -> list:
    """part.2 before part.10, as Dask orders part files."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def input_files(path: Path) -> list[Path]:
    """The file itself, or a directory's Parquet/CSV part files in natural order."""
    if not path.exists():
        raise FileNotFoundError(f"input '{path}' does not exist")
    if path.is_file():
        return [path]
    files = sorted((p for p in path.iterdir() if p.is_file() and not p.name.startswith(("_", "."))
                    and p.suffix.lower() in PARQUET + CSV), key=lambda p: natural_key(p.name))
    if not files:
        raise ValueError(f"directory '{path}' holds no .parquet or .csv files")
    if len({p.suffix.lower() in PARQUET for p in files}) > 1:
        raise ValueError(f"directory '{path}' mixes Parquet and CSV files; keep one format")
    return files


def file_format(path: Path) -> str:
    """'parquet' or 'csv' for a file, or for a directory's part files."""
    suffix = input_files(path)[0].suffix.lower() if path.exists() else path.suffix.lower()
    if suffix in PARQUET:
        return "parquet"
    if suffix in CSV:
        return "csv"
    raise ValueError(f"unsupported input type '{suffix}'; use .csv or .parquet")


def read_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    for part in input_files(path):
        suffix = part.suffix.lower()
        if suffix in PARQUET:
            for batch in pq.ParquetFile(part).iter_batches(batch_size=rows):
                yield batch.to_pandas()
        elif suffix in CSV:
            yield from pd.read_csv(part, chunksize=rows, sep="\t" if suffix == ".tsv" else ",")
        else:
            raise ValueError(f"unsupported input type '{part.suffix}'; use .csv or .parquet")


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


def apply_file(frozen_dir: Path, source: Path, output: Path, chunk_rows: int = 50_000,
               sandboxed: bool = True, progress: bool = True) -> int:
    from efe.apply_partition import PartitionTransformer
    from efe.freeze import input_schema, load_frozen

    transformer = PartitionTransformer(load_frozen(frozen_dir), sandboxed)
    input_files(source)  # a missing or unsupported input fails before anything is written
    chunks = read_chunks(source, chunk_rows)
    output.parent.mkdir(parents=True, exist_ok=True)
    writer = ChunkWriter(output)
    start, done = time.time(), 0
    try:
        for chunk in chunks:
            out = transformer(chunk, where=f"'{source.name}' (rows {done}-{done + len(chunk) - 1})")
            if transformer.output_schema is None:  # frozen before manifests held it: the first chunk decides
                transformer.output_schema = input_schema(out)
            writer.write(out)
            done += len(chunk)
            if progress:
                print(f"\rapplied {done} rows ({done / max(time.time() - start, 1e-9):.0f} rows/s)",
                      end="", file=sys.stderr, flush=True)
    finally:
        writer.close()
        transformer.close()
    if progress:
        print(file=sys.stderr)
    return done


def settle_output_schema(transformer, source: Path, rows: int = 1000) -> list[dict]:
    """The output schema: the manifest's, or (older frozen programs) that of the input's first rows."""
    from efe.freeze import input_schema

    if transformer.output_schema is None:
        head = next(read_chunks(source, rows))
        transformer.output_schema = input_schema(transformer(head, where=f"the first rows of '{source.name}'"))
        transformer.close()
    return transformer.output_schema


def apply(frozen_dir: Path, source: Path, output: Path, engine: str = "pandas", options: dict | None = None) -> int:
    """Apply a frozen program with the chosen engine; returns the number of rows written."""
    options = options or {}
    sandboxed = str(options.get("sandbox", "true")).lower() != "false"
    if engine == "pandas":
        return apply_file(frozen_dir, source, output, int(options.get("chunk_rows", 50_000)), sandboxed,
                          progress=bool(options.get("progress", True)))
    if engine == "dask":
        from efe.apply_dask import apply_dask

        return apply_dask(frozen_dir, source, output, sandboxed, options)
    if engine == "spark":
        from efe.apply_spark import apply_spark

        return apply_spark(frozen_dir, source, output, sandboxed, options)
    raise ValueError(f"unknown engine '{engine}'; choose one of {', '.join(ENGINES)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = dict(a.split("=", 1) for a in (sys.argv[1:] if argv is None else argv) if "=" in a)
    if not {"frozen", "input", "output"} <= set(args):
        print(USAGE, file=sys.stderr)
        return 2
    frozen = Path(args["frozen"])
    if (frozen / "frozen" / "manifest.json").exists():
        frozen = frozen / "frozen"
    from efe.freeze import FrozenProgramError

    try:
        rows = apply(frozen, Path(args["input"]), Path(args["output"]), args.get("engine", "pandas"), args)
    except (FrozenProgramError, FileNotFoundError, ValueError, RuntimeError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {rows} rows to {args['output']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
