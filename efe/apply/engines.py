"""A frozen program applied to a file or a directory of part files, with the engine asked for.

engine=pandas (default) reads the input in chunks (CSV chunks or Parquet record batches), checks
each chunk against the manifest's input schema, transforms it in the sandbox with the frozen state
(sent once), and appends it to the output, so memory stays flat as the file grows. engine=dask and
engine=spark do the same per partition on a cluster (``efe.apply.dask_engine``, ``efe.apply.spark_engine``) and
write a directory of part files. Correct chunk by chunk because a frozen program's transform is
row-independent (a gate checks it). The input may be one file or a directory of Parquet or CSV parts.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from efe.apply.dask_engine import apply_dask
from efe.apply.io import ApplyError, ChunkWriter, check_input, option, read_chunks
from efe.apply.partition import PartitionTransformer
from efe.apply.spark_engine import apply_spark
from efe.frozen.freeze import input_schema, load_frozen

ENGINES = ("pandas", "dask", "spark")


def apply_file(frozen_dir: Path, source: Path, output: Path, chunk_rows: int = 50_000,
               sandboxed: bool = True, progress: bool = True) -> int:
    transformer = PartitionTransformer(load_frozen(frozen_dir), sandboxed)
    # a missing, unsupported or empty input, a missing, renamed or retyped column: refused before anything is written
    check_input(source, transformer.input_schema, int(option({}, "check_rows")))
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


def apply(frozen_dir: Path, source: Path, output: Path, engine: str = "pandas", options: dict | None = None) -> int:
    """Apply a frozen program with the chosen engine; returns the number of rows written."""
    options = options or {}
    sandboxed = str(options.get("sandbox", "true")).lower() != "false"
    if engine == "pandas":
        return apply_file(frozen_dir, source, output, int(option(options, "chunk_rows")), sandboxed,
                          progress=bool(options.get("progress", True)))
    check_engine(engine, output)
    if engine == "dask":
        return apply_dask(frozen_dir, source, output, sandboxed, options)
    if engine == "spark":
        return apply_spark(frozen_dir, source, output, sandboxed, options)
    raise ApplyError(f"unknown engine '{engine}'; choose one of {', '.join(ENGINES)}")


def check_engine(engine: str, output: Path, overwrite: bool = False) -> None:
    """A known engine, and (dask, spark) an output that is not a file, unless it may be replaced."""
    if engine not in ENGINES:
        raise ApplyError(f"unknown engine '{engine}'; choose one of {', '.join(ENGINES)}")
    if engine in ("dask", "spark") and output.is_file() and not overwrite:
        raise ApplyError(f"output '{output}' is a file; engine={engine} writes a directory of part files there "
                         "(choose another output path, or add overwrite=true to replace the file)")
