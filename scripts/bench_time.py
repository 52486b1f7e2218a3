#!/usr/bin/env python3
"""Time-series benchmark: does the frozen program help on the future, as much as the search claimed?

    python scripts/bench_time.py [--datasets aus_visitor_nights aus_prison us_employment ...]
                                 [--forecasters mlforecast ets seasonal_naive] [--heldout-windows 3]
                                 [--heldout-stride 0.5] [--iterations N] [--no-transfer] [--out bench/time]
                                 [override ...]

For each dataset and each forecaster, EFE-Time evolves a program with that forecaster (default budget
unless --iterations) and freezes it after its do-no-harm selection. The frozen program is then scored,
unchanged, on ``--heldout-windows`` held-out origins per series (never seen by the search or the
selection), in front of the same forecaster (claimed vs realised gain) and the other forecasters
(transfer), next to the identity and two fixed normalizations (standardisation, log). Gains are
geometric-mean MASE changes vs the identity, 100·(1 − exp(−mean log ratio)); the optimism gap is
claimed − realised. Each series' held-out change carries a standard error: the SD of one window's
log MASE ratio over ``series_loss.se_origins`` origins spread over that series' whole history (not
the neighbouring held-out origins only), over the square root of its effective held-out window count;
a loss counts as significant when change + z·SE < −max loss (the run's own rule, conf/time.yaml
series_loss), and the raw count of series below −max loss is shown beside it.
Every number is computed by the run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

DEFAULT_DATASETS = ["aus_visitor_nights", "aus_prison", "us_employment"]


def _pct(log_gain: float) -> float:
    return float(-100.0 * np.expm1(-log_gain))


def _wtl(values, tie: float) -> str:
    v = np.asarray(list(values), dtype=float)
    return f"{int((v > tie).sum())}/{int((np.abs(v) <= tie).sum())}/{int((v < -tie).sum())}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=DEFAULT_DATASETS,
                        help="dataset names, each optionally with ':override,override' for that dataset")
    parser.add_argument("--forecasters", nargs="+", default=["mlforecast", "ets", "seasonal_naive"])
    parser.add_argument("--no-transfer", action="store_true",
                        help="score each frozen program only in front of its own forecaster (no transfer, no fixed)")
    parser.add_argument("--iterations", type=int, default=None, help="default: evolution.iterations of conf")
    parser.add_argument("--heldout-windows", type=int, default=3)
    parser.add_argument("--heldout-stride", type=float, default=0.5, help="in horizons")
    parser.add_argument("--tie", type=float, default=0.5, help="|change| %% within which a result is a tie")
    parser.add_argument("--max-series-loss", type=float, default=5.0,
                        help="%% loss of one series x forecaster that counts as 'worse'")
    parser.add_argument("--loss-z", type=float, default=None,
                        help="a series' loss is significant when change + z*SE < -max-series-loss "
                             "(default: series_loss.z of conf/time.yaml)")
    parser.add_argument("--reuse", action="store_true",
                        help="a dataset x forecaster whose run directory already holds a report.json is not run again")
    parser.add_argument("--out", default="bench/time")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*")
    args = parser.parse_args()

    from efe.bench.time_fixed import FIXED
    from efe.core.config import compose
    from efe.datasets.ts_store import read_series
    from efe.sandbox import Sandbox
    from efe.core.specs import load_spec
    from efe.time.heldout import evaluate_program, raw_losses, significant_losses
    from efe.time.run import run_time
    from efe.transfer import forecaster_config
    from evaluators.timeseries.forecasters import with_max_history

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    runs, rows, fixed_rows = [], [], []
    for item in args.datasets:
        name, _, extra = item.partition(":")
        dataset_overrides = [o for o in extra.split(",") if o]
        for search_fc in args.forecasters:
            run_dir = out / "runs" / f"{name}-{search_fc}"
            run_dir.mkdir(parents=True, exist_ok=True)
            print(f"[{time.time() - started:5.0f}s] {name}: evolving with {search_fc}", file=sys.stderr, flush=True)
            t0 = time.time()
            budget = [] if args.iterations is None else [f"evolution.iterations={args.iterations}"]
            cfg = compose("time", [f"dataset={name}", *dataset_overrides, f"forecaster={search_fc}", *budget,
                                   f"seed={args.seed}", f"heldout.windows={args.heldout_windows}",
                                   f"heldout.stride={args.heldout_stride}", f"llm.cache_dir={out / 'llm_cache'}",
                                   *args.overrides])
            if args.reuse and (run_dir / "report.json").exists():
                print("  reusing its finished run", file=sys.stderr, flush=True)
            else:
                run_time(cfg, run_dir)
            report = json.loads((run_dir / "report.json").read_text())
            spec = load_spec(run_dir)
            selection = report["selection"]
            claimed = (selection.get("claimed") or {"gain": 0.0, "gain_se": 0.0, "gain_lcb": 0.0})
            frozen = next((r for r in selection.get("table", []) if r["id"] == selection.get("frozen_id")), {})
            runs.append({"dataset": name, "search": search_fc, "decision": selection["decision"],
                         "claimed_pct": _pct(claimed["gain"]), "claimed_lcb_pct": _pct(claimed["gain_lcb"]),
                         "selection_worst_pct": _pct(frozen.get("worst_series_gain", 0.0)),
                         "rejected": int(selection.get("rejected_for_series") or 0),
                         "wall_s": round(time.time() - t0, 1), "eval_s": report["evaluation"]["mean_seconds"]})
            series = read_series(run_dir / "data" / "series.parquet")
            programs = {"EFE": (run_dir / "frozen" / "program.py").read_text()}
            if search_fc == args.forecasters[0] and not args.no_transfer:
                programs.update(FIXED)
            limits = spec.sandbox
            z = spec.series_loss.z if args.loss_z is None else args.loss_z
            args.loss_z_used = z
            runs[-1]["evidence"] = selection.get("evidence") or {}
            with Sandbox(limits) as sandbox:
                for fc_name in ([search_fc] if args.no_transfer else args.forecasters):
                    # its own forecaster exactly as the run had it (with any overrides); others from conf/
                    fc = (spec.forecaster if fc_name == search_fc else
                          with_max_history(forecaster_config(fc_name, {}), spec.windows.max_history))
                    for label, source in programs.items():
                        r = evaluate_program(source, series, spec.prediction_length, spec.season,
                                             spec.heldout.windows, fc, spec.quantile_levels, limits,
                                             spec.seed, sandbox=sandbox, stride=spec.heldout.stride,
                                             se_origins=spec.series_loss.se_origins,
                                             prior_dof=spec.series_loss.prior_dof,
                                             min_history=spec.windows.min_history)
                        base = {"dataset": name, "forecaster": fc_name, "windows": r["n_windows"],
                                "realised_pct": r["gain"]["pct"], "realised_se_log": r["gain"]["se"],
                                "mean_mase_pct": r["improvement_pct"]["mase"], "wql_pct": r["improvement_pct"]["wql"],
                                "per_series": r["per_series_gain_pct"], "per_series_se": r["per_series"],
                                "significant_losses": significant_losses(r["per_series"], args.max_series_loss, z),
                                "raw_losses": raw_losses(r["per_series"], args.max_series_loss),
                                "fallback": r["fallback"]}
                        if label == "EFE":
                            rows.append({**base, "search": search_fc, "own": fc_name == search_fc})
                        else:
                            fixed_rows.append({**base, "method": label})
            if args.reuse and runs[-1]["wall_s"] < 60 and (run_dir / "bench_wall_s").exists():
                runs[-1]["wall_s"] = float((run_dir / "bench_wall_s").read_text())  # the reused run's own time
            else:
                (run_dir / "bench_wall_s").write_text(str(runs[-1]["wall_s"]))
            write_summary(args, out, runs, rows, fixed_rows, started)  # after every run: a partial bench still reports
    return 0


def write_summary(args, out: Path, runs: list, rows: list, fixed_rows: list, started: float) -> None:
    frame = pd.DataFrame(rows)
    frame.assign(significant_losses=frame["significant_losses"].map(len), raw_losses=frame["raw_losses"].map(len)).drop(
        columns=["per_series", "per_series_se"]).to_csv(out / "results.csv", index=False)
    text = render(args, pd.DataFrame(runs), frame, pd.DataFrame(fixed_rows))
    (out / "summary.md").write_text(text)
    print(text)
    print(f"\nwritten: {out / 'summary.md'}, results.csv ({time.time() - started:.0f}s)", file=sys.stderr)


def _worst_with_se(per_series: dict[str, dict]) -> str:
    worst = min(per_series.values(), key=lambda r: r["pct"])
    return f"{worst['pct']:+.1f} ± {worst['se_pct']:.1f}"


def render(args, runs: pd.DataFrame, frame: pd.DataFrame, fixed: pd.DataFrame) -> str:
    tie, max_loss, z = args.tie, args.max_series_loss, args.loss_z_used
    own = frame[frame["own"]].merge(runs, left_on=["dataset", "search"], right_on=["dataset", "search"])
    lines = [f"# Time-series benchmark\n",
             f"Datasets: {', '.join(args.datasets)}; each forecaster searches its own program "
             f"({'default budget' if args.iterations is None else f'{args.iterations} iterations'}); held-out: "
             f"{args.heldout_windows} origins per series, {args.heldout_stride} horizon apart, never seen by the "
             f"search or the selection. % = geometric-mean MASE change vs the identity (positive is better); "
             f"W/T/L = series won/tied/lost (tie: |change| <= {tie}%).\n",
             "Claimed = the frozen program's gain on the claim windows (the latest before the held-out part, "
             "scored once after the choice; 0 for the identity). Selection worst series = the frozen program's "
             "worst series on the selection windows; rejected = finalists with a positive lower bound that were "
             "not eligible because one series lost more than selection.max_series_loss.\n",
             "± SE: a series' held-out standard error = the SD of one window's log MASE ratio vs the identity over "
             "origins spread over that series' whole history (series_loss.se_origins; shrunk towards the SD pooled "
             "over the series by series_loss.prior_dof), over sqrt(effective held-out windows) (overlapping origins "
             "count as windows / (horizon / stride)); 0 for a series left unchanged. In %: 100·exp(−log gain)·SE. "
             f"Significant losses: series whose change + {z:g}·SE < −{max_loss:g}% (judged on the log scale); raw: "
             f"series whose change < −{max_loss:g}%, noise or not.\n",
             "| dataset | forecaster | selection | rejected | claimed % (lower bound) | realised % | mean-MASE % | "
             "W/T/L series | losses significant (raw) | selection worst series % | held-out worst series % ± SE | "
             "optimism gap pp | wall s | s / eval |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    series_vals, significant = [], 0
    for _, r in own.iterrows():
        per = list(r["per_series"].values())
        series_vals += per
        significant += len(r["significant_losses"])
        eval_s = f"{r['eval_s']:.2f}" if r["eval_s"] else "-"
        lines.append(f"| {r['dataset']} | {r['forecaster']} | {r['decision']} | {r['rejected']} | "
                     f"{r['claimed_pct']:+.1f} ({r['claimed_lcb_pct']:+.1f}) | {r['realised_pct']:+.1f} | "
                     f"{r['mean_mase_pct']:+.1f} | {_wtl(per, tie)} | {len(r['significant_losses'])} "
                     f"({len(r['raw_losses'])}) | {r['selection_worst_pct']:+.1f} | "
                     f"{_worst_with_se(r['per_series_se'])} | {r['claimed_pct'] - r['realised_pct']:+.1f} | "
                     f"{r['wall_s']:.0f} | {eval_s} |")
    realised = own["realised_pct"].to_numpy()
    gap = (own["claimed_pct"] - own["realised_pct"]).to_numpy()
    lines += ["", "Summary over dataset × forecaster (own forecaster):", "",
              f"- realised held-out change: mean {realised.mean():+.2f}%, median {np.median(realised):+.2f}%; "
              f"mean-MASE change: mean {own['mean_mase_pct'].mean():+.2f}%, median "
              f"{own['mean_mase_pct'].median():+.2f}%",
              f"- dataset × forecaster W/T/L {_wtl(realised, tie)}; series × forecaster W/T/L "
              f"{_wtl(series_vals, tie)}, worst {min(series_vals):+.2f}%; worse than -5%: "
              f"{sum(1 for v in series_vals if v < -5.0)} of {len(series_vals)}",
              f"- significant series × forecaster losses (change + {z:g}·SE < -{max_loss:g}%, SE as above): "
              f"{significant} of {len(series_vals)}",
              f"- optimism gap (claimed − realised): mean {gap.mean():+.2f} pp, max {gap.max():+.2f} pp",
              f"- programs frozen: {int((own['decision'] == 'gain').sum())} of {len(own)} (the rest froze the identity)",
              ""]
    lines += ["Per forecaster (own program, over the datasets):", "",
              "| forecaster | realised % mean | mean-MASE % mean | significant losses (raw) | frozen | wall s |",
              "|---|---|---|---|---|---|"]
    for fc, g in own.groupby("forecaster", sort=False):
        lines.append(f"| {fc} | {g['realised_pct'].mean():+.2f} | {g['mean_mase_pct'].mean():+.2f} | "
                     f"{int(g['significant_losses'].map(len).sum())} ({int(g['raw_losses'].map(len).sum())}) | "
                     f"{int((g['decision'] == 'gain').sum())} of {len(g)} | {g['wall_s'].sum():.0f} |")
    lines.append("")
    transfer = frame[~frame["own"]]
    if len(transfer):
        lines += ["Transfer: the frozen program in front of the other forecasters (realised %, W/T/L series):", "",
                  "| dataset | searched with | applied to | realised % | mean-MASE % | W/T/L series | worst series % |",
                  "|---|---|---|---|---|---|---|"]
        for _, r in transfer.iterrows():
            per = list(r["per_series"].values())
            lines.append(f"| {r['dataset']} | {r['search']} | {r['forecaster']} | {r['realised_pct']:+.1f} | "
                         f"{r['mean_mase_pct']:+.1f} | {_wtl(per, tie)} | {min(per):+.1f} |")
        lines += ["", f"Transfer mean {transfer['realised_pct'].mean():+.2f}%, median "
                  f"{transfer['realised_pct'].median():+.2f}%, worst {transfer['realised_pct'].min():+.2f}%.", ""]
    if len(fixed):
        lines += ["Fixed normalizations for reference (same held-out windows):", "",
                  "| dataset | forecaster | method | realised % | mean-MASE % | W/T/L series |", "|---|---|---|---|---|---|"]
        for _, r in fixed.iterrows():
            lines.append(f"| {r['dataset']} | {r['forecaster']} | {r['method']} | {r['realised_pct']:+.1f} | "
                         f"{r['mean_mase_pct']:+.1f} | {_wtl(list(r['per_series'].values()), tie)} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
