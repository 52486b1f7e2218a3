#!/usr/bin/env python3
"""Rows per second of ``efe.apply`` with engine=pandas, dask and spark on a generated table.

    python scripts/bench_apply_engines.py [--rows 1000000] [--engines pandas,dask,spark,spark_floor] [--no-sandbox]

Writes a Parquet file of ``--rows`` rows (row groups of 125,000) and a frozen feature program
(ratio, centring on a fitted mean, a flag, an integer and a text feature), applies it with each
engine (sandboxed, as ``python -m efe.apply`` does by default), and prints the wall time, the rows
per second, the peak memory of each engine's process tree (each engine runs in a fresh process),
both also as a multiple of the first engine's, and whether the output equals the pandas engine's (values, dtypes, column order; rows
compared sorted by 'a', since Spark's order across partitions is its own).
Spark runs on local[*]; Dask on its default threaded scheduler. Needs efe[dask] and efe[spark].
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from efe.apply import apply  # noqa: E402
from efe.bench.eval import TreeMemory  # noqa: E402
from efe.frozen.freeze import freeze, input_schema, instantiate  # noqa: E402

PROGRAM = '''
# EVOLVE-BLOCK-START
import numpy as np
import pandas as pd


class FeatureProgram:
    def __init__(self, seed=0):
        self.seed = seed

    def fit(self, X, y):
        return {"mean_a": float(X["a"].mean())}

    def transform(self, X, state):
        out = X.copy()
        out["ratio"] = X["a"] / X["b"]
        out["log_a"] = np.log1p(X["a"])
        out["a_centred"] = X["a"] - state["mean_a"]
        out["above"] = X["a"] > state["mean_a"]
        out["k2"] = X["k"] * 2
        out["tag"] = X["group"] + "_" + (X["k"] % 3).astype(str)
        return out
# EVOLVE-BLOCK-END


def build_feature_program(seed=0):
    return FeatureProgram(seed)
'''


def table(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"a": rng.lognormal(0, 1, n), "b": rng.lognormal(0, 1, n),
                         "k": rng.integers(0, 1000, n), "group": rng.choice(["x", "y", "z"], n)})


def _spark_floor(root: Path) -> int:
    """The same Spark job with no efe in it: session, Parquet read, an identity ``mapInPandas``, Parquet write.
    What Spark itself costs on this machine, whatever runs inside the batches."""
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # as efe's Spark engine: workers need pyarrow
    spark = SparkSession.builder.master("local[*]").appName("efe-bench-spark-floor").getOrCreate()
    try:
        frame = spark.read.parquet(str(root / "input.parquet"))
        frame.mapInPandas(lambda batches: batches, frame.schema).write.mode("overwrite").parquet(
            str(root / "out-spark_floor.parquet"))
    finally:
        spark.stop()
    # counted from the written files' footers: a second Spark pass would inflate the floor
    return sum(pq.ParquetFile(f).metadata.num_rows for f in (root / "out-spark_floor.parquet").glob("*.parquet"))


def _apply_one(engine: str, root: Path, sandbox: bool) -> None:
    """One engine in this (fresh) process: the parent measures its wall time and peak memory."""
    if engine == "spark_floor":
        print(_spark_floor(root))
        return
    rows = apply(root / "frozen", root / "input.parquet", root / f"out-{engine}.parquet", engine,
                 {"sandbox": "true" if sandbox else "false", "progress": False})
    print(rows)


def _measure(engine: str, root: Path, sandbox: bool) -> tuple[int, float, int]:
    """(rows, wall seconds, peak RSS in bytes summed over the process tree: sandbox workers, Spark's JVM)."""
    cmd = [sys.executable, __file__, "--one", engine, "--dir", str(root)] + ([] if sandbox else ["--no-sandbox"])
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with TreeMemory(proc.pid) as memory:
        out, err = proc.communicate()
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"engine={engine} failed (exit {proc.returncode}): {err.strip().splitlines()[-1:]}")
    return int(out.strip().splitlines()[-1]), seconds, memory.peak_bytes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--engines", default="pandas,dask,spark",
                        help="spark_floor: the same Spark job with no efe in it (an identity mapInPandas), for scale")
    parser.add_argument("--no-sandbox", action="store_true", help="run the reviewed frozen program in-process")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # internal: run one engine in this process
    parser.add_argument("--dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        _apply_one(args.one, Path(args.dir), not args.no_sandbox)
        return

    with tempfile.TemporaryDirectory(prefix="efe-bench-apply-") as tmp:
        root = Path(tmp)
        train = table(2000, seed=1)
        program = instantiate(PROGRAM, "build_feature_program")
        state = program.fit(train, None)
        out = program.transform(train, state)
        freeze(root / "frozen", "tab", PROGRAM, state, schema=input_schema(train),
               output_columns=list(out.columns), extra={"output_schema": input_schema(out)})
        source = root / "input.parquet"
        table(args.rows, seed=2).to_parquet(source, index=False, row_group_size=125_000)
        print(f"input: {args.rows:,} rows, {source.stat().st_size / 1e6:.1f} MB Parquet; "
              f"sandbox: {not args.no_sandbox}; load average {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
        engines = args.engines.split(",")
        reference, base = None, None
        for engine in engines:
            rows, seconds, peak = _measure(engine, root, not args.no_sandbox)
            got = pd.read_parquet(root / f"out-{engine}.parquet").sort_values("a", kind="stable").reset_index(drop=True)
            if reference is None:
                reference, base = got, (seconds, peak)
            same = got.equals(reference) and list(got.dtypes) == list(reference.dtypes)
            same_text = "n/a (no efe in it)" if engine == "spark_floor" else ("yes" if same else "NO")
            print(f"{engine:7s} {rows:>10,} rows  {seconds:7.1f} s ({seconds / base[0]:.2f}x {engines[0]})  "
                  f"{rows / seconds:>10,.0f} rows/s  peak memory {peak / 2**30:.2f} GiB ({peak / base[1]:.2f}x)  "
                  f"identical to {engines[0]}: {same_text}", flush=True)
        print("(wall time includes starting the engine: Python, and for Spark its JVM; peak memory is the RSS "
              "summed over the engine's process tree, sampled every 0.2 s)")


if __name__ == "__main__":
    main()
