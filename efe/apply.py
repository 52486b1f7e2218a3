"""``python -m efe.apply frozen=<dir> input=data.csv output=features.parquet``: a frozen program on a file.

Reads the input in chunks (CSV chunks or Parquet record batches), checks each chunk against
the manifest's input schema, transforms it in the sandbox with the frozen state (sent once),
and appends it to the output, so memory stays flat as the file grows. Correct chunk by chunk
because a frozen program's transform is row-independent (a gate checks it).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from efe.freeze import FrozenProgram
from efe.sandbox import Sandbox, SandboxFailure, SandboxLimits

USAGE = ("usage: python -m efe.apply frozen=<frozen dir or run dir> input=<.csv|.parquet> "
         "output=<.parquet|.csv> [chunk_rows=50000] [sandbox=true]")


def read_chunks(path: Path, rows: int) -> Iterator[pd.DataFrame]:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=rows):
            yield batch.to_pandas()
    elif suffix in (".csv", ".tsv", ".gz", ".txt"):
        yield from pd.read_csv(path, chunksize=rows, sep="\t" if suffix == ".tsv" else ",")
    else:
        raise ValueError(f"unsupported input type '{path.suffix}'; use .csv or .parquet")


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


class SandboxedProgram:
    """A frozen tabular program run in the sandbox: the state is sent once, each call forks a child.

    The one sandboxed path for frozen programs (``efe.apply`` and ``load_program(sandboxed=True)``).
    """

    def __init__(self, frozen: FrozenProgram, limits: SandboxLimits | None = None) -> None:
        self.source = frozen.source
        self.sandbox = Sandbox(limits or SandboxLimits(timeout_s=600, memory_mb=4096, cpu_s=1200))
        self.sandbox.load("frozen", {"state": frozen.state})

    def transform(self, X: pd.DataFrame, where: str = "the input") -> pd.DataFrame:
        return self._run([{"op": "transform", "args": ["X", "state"], "out": "T"}], {"X": X}, "T", where)

    def fit(self, X: pd.DataFrame, y: pd.Series) -> dict:
        """The program's own ``fit`` on new data; later ``transform`` calls use this state."""
        state = self._run([{"op": "fit", "args": ["X", "y"], "out": "S"}], {"X": X, "y": y}, "S", "fitting")
        self.sandbox.load("frozen", {"state": state})
        return state

    def _run(self, plan: list[dict], values: dict, out: str, where: str):
        result = self.sandbox.run(self.source, "tab", plan, [out], data="frozen", values=values)
        if isinstance(result, SandboxFailure):
            raise RuntimeError(f"the program failed on {where}: {result.reason}")
        return result.outputs[out]

    def close(self) -> None:
        self.sandbox.close()


def apply_file(frozen_dir: Path, source: Path, output: Path, chunk_rows: int = 50_000,
               sandboxed: bool = True, progress: bool = True) -> int:
    from efe.freeze import instantiate, load_frozen
    from efe.transformer import coerce_to_schema

    frozen = load_frozen(frozen_dir)
    if frozen.manifest.get("setting") != "tab":
        raise ValueError("efe.apply applies tabular feature programs")
    schema = frozen.manifest.get("input_schema", [])
    if not source.exists():
        raise FileNotFoundError(f"input file '{source}' does not exist")
    output.parent.mkdir(parents=True, exist_ok=True)
    writer = ChunkWriter(output)
    sandbox = SandboxedProgram(frozen) if sandboxed else None
    program = None if sandboxed else instantiate(frozen.source, "build_feature_program")
    start, done = time.time(), 0
    try:
        for i, chunk in enumerate(read_chunks(source, chunk_rows)):
            first_row = done
            X = coerce_to_schema(chunk, schema, where=f"'{source.name}' (rows {first_row}-{first_row + len(chunk) - 1})")
            X.index = pd.RangeIndex(first_row, first_row + len(X))
            if sandbox is not None:
                out = sandbox.transform(X, where=f"chunk {i + 1}")
            else:
                out = program.transform(X, frozen.state)
            writer.write(out.reset_index(drop=True))
            done += len(chunk)
            if progress:
                print(f"\rapplied {done} rows ({done / max(time.time() - start, 1e-9):.0f} rows/s)",
                      end="", file=sys.stderr, flush=True)
    finally:
        writer.close()
        if sandbox is not None:
            sandbox.close()
    if progress:
        print(file=sys.stderr)
    return done


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
        rows = apply_file(frozen, Path(args["input"]), Path(args["output"]), int(args.get("chunk_rows", 50_000)),
                          args.get("sandbox", "true").lower() != "false")
    except (FrozenProgramError, FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"wrote {rows} rows to {args['output']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
