#!/usr/bin/env python3
"""Side-by-side tabular benchmark: no FE, CAAFE-style, LLM-FE-style, OpenFE and EFE on the same folds.

    python scripts/bench_tab.py [--datasets titanic hmda diabetes wine ...] [--task auto] [--folds 3] [--budget 12]
                                [--methods none caafe llmfe openfe efe] [--out bench/tab]
                                [--efe-override key=value ...] [override ...]

Every dataset × outer fold × method is fitted on the fold's training part and scored on its
held-out part with TabPFN (when `scorer.model_path` / EFE_TABPFN_MODEL_PATH is set), LightGBM
and a decision tree. Each table's task (binary, multiclass, regression) is its own (``--task`` forces one
on every table, as ``dataset.task`` does): the columns named "AUC" hold the task's metric (RMSE for a
regression table, where the mean rank counts lower as better, and the realised gain is the relative RMSE
reduction); the CAAFE-style baseline scores binary tables only. LLM-style methods get the same number of LLM calls (--budget) from the same
back end (`llm=...` overrides; the offline proposer by default). Cells are appended to
results.jsonl as they finish, so an interrupted benchmark resumes where it stopped. Every number
in the tables is computed from that file.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from efe.core.task import gain  # noqa: E402
from efe.datasets.bundled import TABLES  # noqa: E402

METHODS = ["none", "caafe", "llmfe", "openfe", "efe"]
LABELS = {"none": "no FE", "caafe": "CAAFE-style", "llmfe": "LLM-FE-style", "openfe": "OpenFE", "efe": "EFE"}


def folds_of(name: str, n_folds: int, seed: int, task: str = "auto"):
    from sklearn.model_selection import KFold, StratifiedKFold

    from efe.datasets.split import _subset
    from efe.datasets.tabular import load_tabular

    ds = load_tabular({"name": name, "task": task})
    kind = KFold if ds.task == "regression" else StratifiedKFold  # stratified by class only
    skf = kind(n_splits=n_folds, shuffle=True, random_state=seed)
    for k, (tr, te) in enumerate(skf.split(np.zeros(len(ds.y)), ds.y)):
        yield k, _subset(ds, sorted(tr)), _subset(ds, sorted(te))


def summarise(cells: list[dict], models: list[str], methods: list[str]) -> tuple[pd.DataFrame, str]:
    rows = []
    flat = [{"dataset": c["dataset"], "fold": c["fold"], "method": c["method"], "model": m, "auc": a}
            for c in cells if "auc" in c for m, a in c["auc"].items()]
    frame = pd.DataFrame(flat)
    if frame.empty:
        return pd.DataFrame(), "(no results)"
    lower_better = {c["dataset"] for c in cells if c.get("task") == "regression"}  # RMSE
    frame["signed"] = np.where(frame["dataset"].isin(lower_better), -frame["auc"], frame["auc"])
    frame["rank"] = frame.groupby(["dataset", "fold", "model"])["signed"].rank(ascending=False, method="average")
    cell_frame = pd.DataFrame(cells)
    for method in methods:
        mine = cell_frame[cell_frame["method"] == method]
        if mine.empty:
            continue
        row = {"method": LABELS.get(method, method), "cells": int(len(mine))}
        for model in models:
            sel = frame[(frame["method"] == method) & (frame["model"] == model)]
            if sel.empty:
                continue
            row[f"{model} AUC mean"] = sel["auc"].mean()
            row[f"{model} AUC std"] = sel["auc"].std(ddof=0)
            row[f"{model} mean rank"] = sel["rank"].mean()
        row["mean rank (all models)"] = frame[frame["method"] == method]["rank"].mean()
        row["new features"] = mine["n_new"].mean()
        row["dropped features"] = mine["n_dropped"].mean()
        row["wall s"] = mine["wall_s"].mean()
        row["LLM calls"] = int(mine["llm_calls"].sum())
        row["LLM cost USD"] = float(mine["llm_cost_usd"].sum())
        rows.append(row)
    table = pd.DataFrame(rows)
    header = ["method"] + [f"{m} AUC" for m in models if f"{m} AUC mean" in table] + \
             ["mean rank", "new feat.", "dropped", "wall s / cell", "LLM calls", "LLM $"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for _, r in table.iterrows():
        cells_md = [r["method"]]
        for m in models:
            if f"{m} AUC mean" in table and not pd.isna(r.get(f"{m} AUC mean")):
                cells_md.append(f"{r[f'{m} AUC mean']:.4f} ± {r[f'{m} AUC std']:.4f}")
            elif f"{m} AUC mean" in table:
                cells_md.append("-")
        cells_md += [f"{r['mean rank (all models)']:.2f}", f"{r['new features']:.1f}", f"{r['dropped features']:.1f}",
                     f"{r['wall s']:.1f}", f"{r['LLM calls']}", f"{r['LLM cost USD']:.4f}"]
        lines.append("| " + " | ".join(cells_md) + " |")
    return table, "\n".join(lines)


def summarise_gap(cells: list[dict], models: list[str], methods: list[str], tie: float) -> tuple[pd.DataFrame, str]:
    """Per method and scorer: what the method claimed, what it realised on the held-out part
    (against no FE on the same split), win/tie/loss and the worst split."""
    none = {(c["dataset"], c["fold"]): c["auc"] for c in cells if c["method"] == "none" and "auc" in c}
    rows = []
    for method in methods:
        if method == "none":
            continue
        for model in models:
            pairs = [(c, gain(c.get("task", "binary"), none[(c["dataset"], c["fold"])][model], c["auc"][model]))
                     for c in cells
                     if c["method"] == method and "auc" in c and model in c["auc"]
                     and model in none.get((c["dataset"], c["fold"]), {})]
            if not pairs:
                continue
            realised = np.array([d for _, d in pairs])
            claimed = np.array([c.get("claimed_delta_auc", np.nan) for c, _ in pairs], dtype=float)
            worst = min(pairs, key=lambda p: p[1])
            rows.append({"method": LABELS.get(method, method), "scorer": model, "splits": len(pairs),
                         "claimed": np.nanmean(claimed) if np.isfinite(claimed).any() else np.nan,
                         "realised": realised.mean(), "gap": np.nanmean(claimed - realised)
                         if np.isfinite(claimed).any() else np.nan,
                         "win": int((realised > tie).sum()), "tie": int((np.abs(realised) <= tie).sum()),
                         "loss": int((realised < -tie).sum()), "worst": worst[1],
                         "worst split": f"{worst[0]['dataset']}/{worst[0]['fold']}",
                         "identity frozen": sum(bool(c.get("frozen_identity")) for c, _ in pairs)
                         if method in ("efe", "llmfe") else None})
    table = pd.DataFrame(rows)
    if table.empty:
        return table, "(no results)"
    header = ["method", "scorer", "splits", "claimed ΔAUC", "realised held-out ΔAUC", "optimism gap", "win/tie/loss",
              "worst split", "identity frozen"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def num(x):
        return "-" if pd.isna(x) else f"{x:+.4f}"

    for _, r in table.iterrows():
        frozen = "-" if r["identity frozen"] is None or pd.isna(r["identity frozen"]) else \
            f"{int(r['identity frozen'])}/{r['splits']}"
        lines.append(f"| {r['method']} | {r['scorer']} | {r['splits']} | {num(r['claimed'])} | {num(r['realised'])} | "
                     f"{num(r['gap'])} | {r['win']}/{r['tie']}/{r['loss']} | {r['worst']:+.4f} ({r['worst split']}) | "
                     f"{frozen} |")
    return table, "\n".join(lines)


def plot(table: pd.DataFrame, models: list[str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    present = [m for m in models if f"{m} AUC mean" in table]
    fig, ax = plt.subplots(figsize=(2.2 + 1.6 * len(present) * max(1, len(table)) / 3, 4))
    width = 0.8 / max(len(table), 1)
    x = np.arange(len(present))
    for i, (_, r) in enumerate(table.iterrows()):
        means = [r.get(f"{m} AUC mean", np.nan) for m in present]
        stds = [r.get(f"{m} AUC std", 0.0) for m in present]
        ax.bar(x + i * width, means, width, yerr=stds, capsize=3, label=r["method"])
    ax.set_xticks(x + width * (len(table) - 1) / 2, present)
    lo = np.nanmin([table[f"{m} AUC mean"].min() for m in present])
    ax.set_ylim(max(0.0, lo - 0.08), 1.0)
    ax.set_ylabel("held-out ROC-AUC (mean ± std over datasets × folds)")
    ax.set_title("Tabular benchmark")
    ax.legend(fontsize=8, ncol=min(len(table), 5))
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=sorted(TABLES))
    parser.add_argument("--task", default="auto", help="auto|binary|multiclass|regression for every table "
                                                         "(auto: each table's own)")
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=12, help="LLM calls per LLM-style method and fold")
    parser.add_argument("--methods", nargs="+", default=METHODS, choices=METHODS)
    parser.add_argument("--models", nargs="+", default=["tabpfn", "lightgbm", "tree"])
    parser.add_argument("--out", default="bench/tab")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--summarise-only", action="store_true",
                        help="tabulate the cells already in results.jsonl without running missing ones")
    parser.add_argument("--tie", type=float, default=1e-4, help="|held-out ΔAUC| up to this counts as a tie")
    parser.add_argument("--efe-override", action="append", default=[], metavar="KEY=VALUE",
                        help="a Hydra override for the efe method only (repeatable; e.g. proposer.router=uniform)")
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every run (e.g. llm=openai ...)")
    args = parser.parse_args()

    from efe.bench.tab import load_cells, run_cell
    from efe.core.task import CHOICES

    if args.task not in CHOICES:
        parser.error(f"--task must be one of {', '.join(CHOICES)}")

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results, done = load_cells(out)
    overrides = [f"seed={args.seed}", f"llm.cache_dir={out / 'llm_cache'}", *args.overrides]
    started = time.time()
    for name in args.datasets:
        for fold, train, test in folds_of(name, args.folds, args.seed, args.task):
            for method in args.methods:
                key = (name, fold, method)
                if key in done or args.summarise_only:
                    continue
                print(f"[{time.time() - started:6.0f}s] {name} fold {fold + 1}/{args.folds}: {method}",
                      file=sys.stderr, flush=True)
                cell = {"dataset": name, "fold": fold, "method": method, "task": train.task}
                try:
                    cell.update(run_cell(method, train, test, out / "runs" / name / f"fold{fold}" / method,
                                         budget=args.budget, models=args.models,
                                         overrides=overrides + (args.efe_override if method == "efe" else [])))
                except Exception as exc:  # noqa: BLE001 - one failed cell must not sink the benchmark
                    cell.update({"error": f"{type(exc).__name__}: {exc}"[:500], "n_new": 0, "n_dropped": 0,
                                 "wall_s": 0.0, "llm_calls": 0, "llm_cost_usd": 0.0})
                    (out / "errors.log").open("a").write(f"{key}\n{traceback.format_exc()}\n")
                    print(f"  failed: {cell['error']}", file=sys.stderr)
                with results.open("a") as fh:
                    fh.write(json.dumps(cell) + "\n")
                done[key] = cell

    cells = [c for c in done.values() if c["dataset"] in args.datasets and c["method"] in args.methods]
    table, markdown = summarise(cells, args.models, args.methods)
    gap_table, gap_md = summarise_gap(cells, args.models, args.methods, args.tie)
    markdown += ("\n\nClaimed vs realised ΔAUC against no FE on the same split (claimed: what the method's own "
                 "scoring reported for its final program; EFE: the selection-pool estimate, 0 when it froze the "
                 f"identity; realised: held-out; tie: |Δ| <= {args.tie:g}):\n\n" + gap_md)
    gap_table.to_csv(out / "gap.csv", index=False)
    failed = [c for c in cells if "error" in c]
    note = (f"\n\n{len(failed)} cell(s) failed; see errors.log: "
            + "; ".join(f"{c['dataset']}/{c['fold']}/{c['method']}" for c in failed)) if failed else ""
    header = (f"# Tabular benchmark\n\nDatasets: {', '.join(args.datasets)}; {args.folds} outer folds; LLM budget "
              f"{args.budget} calls per LLM-style method and fold; overrides: {' '.join(args.overrides) or '(none)'}"
              f"{'; efe only: ' + ' '.join(args.efe_override) if args.efe_override else ''}.\n"
              f"Mean rank: per dataset × fold × model, 1 = best.\n\n")
    (out / "summary.md").write_text(header + markdown + note + "\n")
    table.to_csv(out / "summary.csv", index=False)
    if not table.empty:
        plot(table, args.models, out / "summary.png")
    print(header + markdown + note)
    print(f"\nwritten: {out / 'summary.md'}, summary.csv, summary.png, results.jsonl "
          f"({time.time() - started:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
