"""``python -m efe.apply frozen=<dir> input=data.csv output=features.parquet [engine=pandas|dask|spark]``.

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
from typing import Sequence

from efe.apply.dask_engine import apply_dask
from efe.apply.io import ChunkWriter, check_input, option, read_chunks
from efe.apply.partition import PartitionTransformer
from efe.apply.spark_engine import apply_spark
from efe.frozen.freeze import FrozenProgramError, input_schema, load_frozen
from efe.rundir.paths import frozen_dir_of

USAGE = ("usage: python -m efe.apply frozen=<frozen dir or run dir> input=<.csv|.parquet file or directory> "
         "output=<.parquet|.csv> [engine=pandas|dask|spark] [chunk_rows=50000] [sandbox=true] "
         "[partitions=N] [dask_address=<scheduler>] [spark_master=local[*]]")
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
    if engine in ("dask", "spark") and output.is_file():
        raise ValueError(f"output '{output}' is a file; engine={engine} writes a directory of part files there "
                         "(choose another output path or remove the file)")
    if engine == "dask":
        return apply_dask(frozen_dir, source, output, sandboxed, options)
    if engine == "spark":
        return apply_spark(frozen_dir, source, output, sandboxed, options)
    raise ValueError(f"unknown engine '{engine}'; choose one of {', '.join(ENGINES)}")


def main(argv: Sequence[str] | None = None) -> int:
    args = dict(a.split("=", 1) for a in (sys.argv[1:] if argv is None else argv) if "=" in a)
    if not {"frozen", "input", "output"} <= set(args):
        print(USAGE, file=sys.stderr)
        return 2
    try:
        frozen = frozen_dir_of(args["frozen"])
        rows = apply(frozen, Path(args["input"]), Path(args["output"]), args.get("engine", "pandas"), args)
    except (FrozenProgramError, FileNotFoundError, ValueError, RuntimeError, ImportError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {rows} rows to {args['output']}")
    return 0

