#!/usr/bin/env python3
"""Cost of one tabular candidate evaluation, part by part, and of real runs (logic: efe/bench/eval.py).

    python scripts/bench_eval.py [--tables titanic hmda diabetes wine generated] [--task auto] [--rows 2000]
                                 [--cols 20] [--candidates 12] [--run 10] [--large | --million] [--out DIR]
                                 [override ...]

For each table (the bundled titanic and hmda, and a generated --rows x --cols table with mixed
numeric/categorical columns and missing values) it evaluates the offline proposer's candidates
with the default configuration (K = pools.n_folds) and prints the cost per candidate split into
gates, sandbox overhead, program fit/transform, preprocessing, scorer fits, feedback and
bookkeeping, and the ratio "whole evaluation / time of the scorer fits it performs".
--run N: also a real `python -m efe.tab` run of N iterations per table: candidates per minute of
search and peak memory (RSS summed over the run's processes).
--large: a real run on a generated 200,000 x 40 table with 30 iterations (--large-rows,
--large-cols, --large-iterations change it): wall time, search vs. after-search time, peak memory,
and the seconds of each phase (start-up, loading, checks, search, final selection, freeze, report),
timed from the console line that starts it. --million: the same on 1,000,000 x 20 rows, 10 iterations.
--task binary|multiclass|regression: the task of every table (dataset.task); the generated table's label is
then two classes, three classes or a number (auto: each bundled table's own, binary for the generated one).
Trailing key=value arguments are Hydra overrides for every evaluation and run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from efe.bench.eval import profile_table, run_cost, scratch_dir  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tables", nargs="*", default=["titanic", "hmda", "generated"])
    parser.add_argument("--task", default="auto", choices=["auto", "binary", "multiclass", "regression"],
                        help="dataset.task of every table (the generated table's label follows it)")
    parser.add_argument("--rows", type=int, default=2000, help="rows of the generated table")
    parser.add_argument("--cols", type=int, default=20, help="columns of the generated table")
    parser.add_argument("--candidates", type=int, default=12)
    parser.add_argument("--run", type=int, default=0, metavar="N", help="also a real run of N iterations per table")
    parser.add_argument("--large", action="store_true", help="a real run on a large generated table")
    parser.add_argument("--large-rows", type=int, default=200_000)
    parser.add_argument("--large-cols", type=int, default=40)
    parser.add_argument("--large-iterations", type=int, default=30)
    parser.add_argument("--million", action="store_true",
                        help="the large run on 1,000,000 x 20 rows with 10 iterations (overrides --large-*)")
    parser.add_argument("--out", default=None, help="working directory (default: a new temporary one)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides, e.g. pools.n_folds=3")
    args = parser.parse_args()
    workdir = scratch_dir(args.out)

    for table in args.tables:
        profile = profile_table(table, workdir, args.candidates, args.rows, args.cols, args.overrides, args.task)
        print("\n".join(profile.lines()), flush=True)
        if args.run:
            print(f"real run: python -m efe.tab on {table}, {args.run} iterations", flush=True)
            cost = run_cost(table, workdir, args.run, args.rows, args.cols, args.overrides, log=lambda _: None,
                            task=args.task)
            print("\n".join(cost.lines()), flush=True)
    if args.million:
        args.large, args.large_rows, args.large_cols, args.large_iterations = True, 1_000_000, 20, 10
    if args.large:
        print(f"large run: python -m efe.tab on a generated {args.large_rows} x {args.large_cols} table, "
              f"{args.large_iterations} iterations", flush=True)
        cost = run_cost("generated", workdir, args.large_iterations, args.large_rows, args.large_cols,
                        args.overrides, log=lambda line: print(line, flush=True), task=args.task)
        print("\n".join(cost.lines()), flush=True)


if __name__ == "__main__":
    main()
