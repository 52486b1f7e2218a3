#!/usr/bin/env python3
"""Time-series benchmark: for each forecaster, identity vs the frozen EFE program vs fixed normalizations.

    python scripts/bench_time.py [--datasets synthetic_exp air_passengers ...] [--forecasters seasonal_naive ets theta]
                                 [--search-forecaster theta] [--iterations 30] [--out bench/time] [override ...]

For each dataset, EFE-Time evolves a program with the search forecaster on the training part; the
frozen program is then applied, unchanged, in front of every forecaster on the held-out windows,
next to the identity and two standard normalizations (per-series standardisation, log). Add
chronos2 / chronos_bolt to --forecasters when their weights are configured
(EFE_CHRONOS2_PATH / EFE_CHRONOS_BOLT_PATH). Every number is computed by the run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

METRICS = ("mase", "wql", "mae")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=["synthetic_exp", "air_passengers", "aus_drug_subsidies",
                                                          "uk_lung_deaths"])
    parser.add_argument("--forecasters", nargs="+", default=["seasonal_naive", "ets", "theta"])
    parser.add_argument("--search-forecaster", default="theta")
    parser.add_argument("--iterations", type=int, default=30)
    parser.add_argument("--out", default="bench/time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    from efe.bench.time_fixed import FIXED
    from efe.config import compose
    from efe.datasets.ts_store import read_series
    from efe.sandbox import Sandbox, SandboxLimits
    from efe.time.heldout import evaluate_program
    from efe.time.run import run_time
    from efe.transfer import forecaster_config

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    rows = []
    for name in args.datasets:
        run_dir = out / "runs" / name
        run_dir.mkdir(parents=True, exist_ok=True)
        print(f"[{time.time() - started:5.0f}s] {name}: evolving with {args.search_forecaster}", file=sys.stderr)
        cfg = compose("time", [f"dataset={name}", f"forecaster={args.search_forecaster}",
                               f"evolution.iterations={args.iterations}", f"seed={args.seed}",
                               f"llm.cache_dir={out / 'llm_cache'}", *args.overrides])
        run_time(cfg, run_dir)
        spec = json.loads((run_dir / "spec.json").read_text())
        series = read_series(run_dir / "data" / "series.parquet")
        programs = {"EFE": (run_dir / "frozen" / "program.py").read_text(), **FIXED}
        limits = SandboxLimits.from_mapping(spec["sandbox"])
        with Sandbox(limits) as sandbox:
            for fc_name in args.forecasters:
                fc = forecaster_config(fc_name, {})
                for label, source in programs.items():
                    r = evaluate_program(source, series, spec["prediction_length"], spec["season"],
                                         spec["heldout"]["windows"], fc, spec["quantile_levels"], limits,
                                         int(spec["seed"]), sandbox=sandbox)
                    base = {"dataset": name, "forecaster": fc_name, "windows": r["n_windows"]}
                    if label == "EFE":
                        rows.append({**base, "method": "identity", **{m: r["identity"][m] for m in METRICS},
                                     **{f"{m}_pct": 0.0 for m in METRICS}, "fallback": 0})
                    rows.append({**base, "method": label, **{m: r["program"][m] for m in METRICS},
                                 **{f"{m}_pct": r["improvement_pct"][m] for m in METRICS}, "fallback": r["fallback"]})
    frame = pd.DataFrame(rows)
    frame.to_csv(out / "results.csv", index=False)
    lines = ["| dataset | forecaster | method | MASE | WQL | MAE | MASE % | WQL % | MAE % |", "|" + "---|" * 9]
    for _, r in frame.iterrows():
        lines.append(f"| {r['dataset']} | {r['forecaster']} | {r['method']} | {r['mase']:.4f} | {r['wql']:.4f} | "
                     f"{r['mae']:.4g} | {r['mase_pct']:+.1f} | {r['wql_pct']:+.1f} | {r['mae_pct']:+.1f} |")
    mean = frame.groupby(["forecaster", "method"])[[f"{m}_pct" for m in METRICS]].mean().reset_index()
    lines += ["", "Mean % improvement over the identity across datasets:", "",
              "| forecaster | method | MASE % | WQL % | MAE % |", "|---|---|---|---|---|"]
    for _, r in mean.iterrows():
        lines.append(f"| {r['forecaster']} | {r['method']} | {r['mase_pct']:+.1f} | {r['wql_pct']:+.1f} | "
                     f"{r['mae_pct']:+.1f} |")
    header = (f"# Time-series benchmark\n\nDatasets: {', '.join(args.datasets)}; EFE evolved with "
              f"{args.search_forecaster} for {args.iterations} iterations, then applied unchanged to every "
              f"forecaster; held-out: the last window of each series. % = improvement over the identity "
              f"(positive is better).\n\n")
    (out / "summary.md").write_text(header + "\n".join(lines) + "\n")
    _plot(mean, out / "summary.png")
    print(header + "\n".join(lines))
    print(f"\nwritten: {out / 'summary.md'}, results.csv, summary.png ({time.time() - started:.0f}s)", file=sys.stderr)
    return 0


def _plot(mean: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods = [m for m in ("EFE", "standardize", "log") if m in set(mean["method"])]
    forecasters = list(dict.fromkeys(mean["forecaster"]))
    fig, ax = plt.subplots(figsize=(1.5 + 1.8 * len(forecasters), 4))
    width = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        sel = mean[mean["method"] == method].set_index("forecaster").reindex(forecasters)
        ax.bar([k + i * width for k in range(len(forecasters))], sel["mase_pct"], width, label=method)
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_xticks([k + width * (len(methods) - 1) / 2 for k in range(len(forecasters))], forecasters)
    ax.set_ylabel("mean MASE improvement over identity (%)")
    ax.set_title("Time-series benchmark (held-out windows)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
