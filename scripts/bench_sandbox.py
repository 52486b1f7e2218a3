#!/usr/bin/env python3
"""Per-call overhead of the sandbox with data already loaded (target: under 50 ms).

    python scripts/bench_sandbox.py [--rows 2000] [--cols 20] [--calls 50]

Runs the identity program (fit + transform) through the sandbox on a table already cached in
the worker, and the same calls in-process; prints the medians and their difference.
"""

from __future__ import annotations

import argparse
import statistics
import sys
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
    args = parser.parse_args()

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
