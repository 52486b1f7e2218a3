#!/usr/bin/env python3
"""Per-call overhead of the sandbox with data already loaded (target: under 50 ms), and what a reloaded
frozen program pays per row in the sandbox.

    python scripts/bench_sandbox.py [--rows 2000] [--cols 20] [--calls 50] [--batches 1,1000,10000,100000]

Runs the identity program (fit + transform) through the sandbox on a table already cached in
the worker, and the same calls in-process; prints the medians and their difference. Then freezes
a small feature program (a ratio, a log, a bin) and times ``efe.load_program(dir).transform`` (the
sandbox, the default) against ``sandboxed=False`` (in this process) for batches of each size: the
data goes to the worker and the features come back on every call, so the sandbox costs a fixed
part per call plus a part per row.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from efe.core.specs import SandboxSpec, conf_part  # noqa: E402
from efe.sandbox import Sandbox, SandboxResult  # noqa: E402

IDENTITY = (Path(__file__).resolve().parent.parent / "programs" / "tab_identity.py").read_text()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2000)
    parser.add_argument("--cols", type=int, default=20)
    parser.add_argument("--calls", type=int, default=50)
    parser.add_argument("--batches", default="1,1000,10000,100000", help="rows per transform call, for the reload")
    args = parser.parse_args()
    overhead(args)
    reload_cost([int(b) for b in args.batches.split(",")], args.cols)


RELOAD_BODY = ("out = X.copy()\n"
               "out['ratio'] = X['x0'] / (X['x1'].abs() + 1)\n"
               "out['log_x2'] = np.log1p(X['x2'].abs())\n"
               "out['x3_bin'] = np.digitize(X['x3'], state['edges'])\n"
               "return out")


def reload_cost(batches: list[int], cols: int) -> None:
    """Milliseconds per call and microseconds per row of a reloaded program, sandboxed and in-process."""
    import efe
    from efe.frozen.freeze import freeze, input_schema
    from tests.conftest import tab_program

    rng = np.random.default_rng(1)
    big = pd.DataFrame(rng.normal(size=(max(batches), cols)), columns=[f"x{i}" for i in range(cols)])
    with tempfile.TemporaryDirectory(prefix="efe-bench-") as tmp:
        source = tab_program(RELOAD_BODY)
        frozen = freeze(Path(tmp) / "frozen", "tab", source, {"edges": np.array([-1.0, 0.0, 1.0])},
                        schema=input_schema(big))
        start = time.perf_counter()
        boxed = efe.load_program(frozen)  # sandboxed (the default)
        boxed.transform(big.head(1))
        boot = time.perf_counter() - start
        trusted = efe.load_program(frozen, sandboxed=False)
        print(f"\nreloaded frozen program ({cols} input columns, 4 features), efe.load_program(dir).transform:")
        print(f"load + first call in the sandbox (worker start-up, once per process): {1000 * boot:8.1f} ms")
        print(f"{'rows/call':>10} {'sandboxed ms':>13} {'in-process ms':>14} {'extra µs/row':>13}")
        for rows in batches:
            X = big.head(rows)
            calls = max(3, min(30, 200_000 // max(rows, 1)))
            times = {}
            for name, program in (("sandboxed", boxed), ("trusted", trusted)):
                walls = []
                for _ in range(calls):
                    t0 = time.perf_counter()
                    program.transform(X)
                    walls.append(time.perf_counter() - t0)
                times[name] = statistics.median(walls)
            extra = (times["sandboxed"] - times["trusted"]) / rows * 1e6
            print(f"{rows:>10} {1000 * times['sandboxed']:>13.2f} {1000 * times['trusted']:>14.2f} {extra:>13.2f}")

def overhead(args: argparse.Namespace) -> None:
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(args.rows, args.cols)), columns=[f"x{i}" for i in range(args.cols)])
    y = pd.Series(rng.integers(0, 2, args.rows))
    plan = [{"op": "fit", "args": ["X", "y"], "out": "state"},
            {"op": "transform", "args": ["X", "state"], "out": "T"}]

    namespace: dict = {}
    exec(compile(IDENTITY, "identity", "exec"), namespace)
    program = namespace["build_feature_program"](0)
    direct = []
    for _ in range(args.calls):
        start = time.perf_counter()
        program.transform(X, program.fit(X, y))
        direct.append(time.perf_counter() - start)

    t0 = time.perf_counter()
    with Sandbox(conf_part(SandboxSpec, "tab", "sandbox")) as sandbox:
        startup = time.perf_counter() - t0
        sandbox.load("bench", {"X": X, "y": y})
        walls, returned = [], []
        for i in range(args.calls):
            for returns, bucket in ((["state"], walls), (["T"], returned)):
                start = time.perf_counter()
                result = sandbox.run(IDENTITY, "tab", plan, returns, data="bench")
                bucket.append(time.perf_counter() - start)
                if not isinstance(result, SandboxResult):
                    raise SystemExit(f"sandbox call failed: {result}")
        isolation = result.isolation

    ms = lambda xs: 1000 * statistics.median(xs)
    print(f"table: {args.rows} rows x {args.cols} columns, {args.calls} calls, isolation: {isolation}")
    print(f"worker start-up (once):                         {1000 * startup:8.1f} ms")
    print(f"in-process fit+transform (median):              {ms(direct):8.2f} ms")
    print(f"sandboxed fit+transform, state returned:        {ms(walls):8.2f} ms")
    print(f"sandboxed fit+transform, output frame returned: {ms(returned):8.2f} ms")
    print(f"per-call overhead (sandboxed - in-process):     {ms(walls) - ms(direct):8.2f} ms  (target < 50 ms)")


if __name__ == "__main__":
    main()
