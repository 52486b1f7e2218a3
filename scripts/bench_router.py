#!/usr/bin/env python3
"""Router benchmark: proposer.router=ucb vs uniform with the offline proposer, same tables, folds and budget.

    python scripts/bench_router.py [--datasets ...] [--folds 3] [--max-folds 1] [--budget 12]
                                   [--routers ucb uniform] [--out bench/router] [override ...]

For each bundled table and outer fold (of a ``--folds``-fold split; only the first ``--max-folds``
are run) it runs no FE once and EFE once per router (``efe.bench.tab.run_cell``, as
``scripts/bench_tab.py`` does), then reports per router: the held-out ΔAUC of the frozen program
against no FE on the same split (LightGBM and a decision tree), the iteration at which the final
(frozen) winner was first found (``-`` when the identity was frozen), and the iteration at which the
search's best program was first found. Cells are appended to results.jsonl as they finish, so an
interrupted run resumes; every figure is computed from that file and the runs' lineages.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_tab import folds_of  # noqa: E402

from efe.datasets.bundled import TABLES  # noqa: E402


def first_found(lineage: list, sha: str | None) -> int | None:
    """The earliest iteration of a program in the lineage (None when it is not there)."""
    its = [e.iteration or 0 for e in lineage if sha and e.code_sha256 == sha and e.kind in ("seed", "candidate")]
    return min(its) if its else None


def search_facts(run_dir: Path) -> dict:
    from efe.rundir.records import best_valid, read_lineage

    lineage = read_lineage(run_dir / "lineage.jsonl")
    report = json.loads((run_dir / "report.json").read_text())
    frozen = report["winner"]
    frozen_entry = next((e for e in lineage if e.id == frozen.get("id")), None)
    best = best_valid(lineage)
    return {"frozen_kind": frozen.get("kind"),
            "frozen_first_iteration": first_found(lineage, frozen_entry.code_sha256 if frozen_entry else None)
            if frozen.get("kind") == "candidate" else None,
            "best_first_iteration": first_found(lineage, best.code_sha256 if best else None),
            "best_search_fitness": best.fitness if best else None,
            "best_search_delta_auc": best.metrics.get("delta_auc") if best else None,
            "duplicates_rejected": sum(1 for e in lineage if e.duplicate),
            "roles": {r["role"]: [r["tries"], r["improvements"]] for r in (report.get("steering") or {}).get("roles", [])}}


def summarise(cells: list[dict], routers: list[str], models: list[str]) -> str:
    none = {(c["dataset"], c["fold"]): c["auc"] for c in cells if c["method"] == "none" and "auc" in c}
    lines = ["| router | table / fold | " + " | ".join(f"held-out ΔAUC {m}" for m in models)
             + " | frozen winner first found (iter.) | search best first found (iter.) | search best ΔAUC | duplicates rejected |",
             "|---|---|" + "---|" * (len(models) + 4)]
    means = []
    for router in routers:
        mine = sorted((c for c in cells if c["method"] == router and "auc" in c and (c["dataset"], c["fold"]) in none),
                      key=lambda c: (c["dataset"], c["fold"]))
        deltas = {m: [] for m in models}
        best_its, frozen_its = [], []
        for c in mine:
            base = none[(c["dataset"], c["fold"])]
            row = []
            for m in models:
                d = c["auc"][m] - base[m]
                deltas[m].append(d)
                row.append(f"{d:+.4f}")
            fi, bi = c.get("frozen_first_iteration"), c.get("best_first_iteration")
            frozen_its += [fi] if fi is not None else []
            best_its += [bi] if bi is not None else []
            bd = c.get("best_search_delta_auc")
            best_delta = f"{bd:+.4f}" if bd is not None else "-"
            lines.append(f"| {router} | {c['dataset']} / {c['fold']} | " + " | ".join(row)
                         + f" | {fi if fi is not None else '- (identity)'} | {bi if bi is not None else '-'} | "
                         f"{best_delta} | {c.get('duplicates_rejected', 0)} |")
        means.append(f"- {router}: {len(mine)} cells; mean held-out ΔAUC "
                     + ", ".join(f"{m} {np.mean(v):+.4f} (± {np.std(v, ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0:.4f} SE)"
                                 for m, v in deltas.items() if v)
                     + f"; identity frozen in {len(mine) - len(frozen_its)}/{len(mine)}; mean iteration the search's best "
                     f"was first found: {np.mean(best_its) if best_its else float('nan'):.1f}")
    return "\n".join(lines + [""] + means)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", nargs="+", default=sorted(TABLES))
    parser.add_argument("--folds", type=int, default=3, help="outer K-fold split (the same as bench_tab's)")
    parser.add_argument("--max-folds", type=int, default=1, help="run only the first N folds of the split")
    parser.add_argument("--budget", type=int, default=12, help="iterations per EFE run (offline proposer)")
    parser.add_argument("--routers", nargs="+", default=["ucb", "uniform"])
    parser.add_argument("--models", nargs="+", default=["lightgbm", "tree"])
    parser.add_argument("--out", default="bench/router")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every EFE run")
    args = parser.parse_args()

    from efe.bench.tab import load_cells, run_cell

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results, done = load_cells(out)
    common = [f"seed={args.seed}", "llm=offline", f"llm.cache_dir={out / 'llm_cache'}",
              f"memory.path={out / 'memory.jsonl'}", *args.overrides]
    started = time.time()
    for name in args.datasets:
        for fold, train, test in folds_of(name, args.folds, args.seed):
            if fold >= args.max_folds:
                break
            for method in ["none", *args.routers]:
                if (name, fold, method) in done:
                    continue
                print(f"[{time.time() - started:6.0f}s] {name} fold {fold + 1}: {method}", file=sys.stderr, flush=True)
                workdir = out / "runs" / name / f"fold{fold}" / method
                overrides = common if method == "none" else [*common, f"proposer.router={method}"]
                cell = {"dataset": name, "fold": fold, "method": method}
                cell.update(run_cell("none" if method == "none" else "efe", train, test, workdir,
                                     budget=args.budget, overrides=overrides, models=args.models))
                if method != "none":
                    cell.update(search_facts(workdir))
                with results.open("a") as fh:
                    fh.write(json.dumps(cell, default=str) + "\n")
                done[(name, fold, method)] = cell
    cells = [c for c in done.values() if c["dataset"] in args.datasets]
    text = (f"# Router benchmark\n\nTables: {', '.join(args.datasets)}; fold(s) 1..{args.max_folds} of a "
            f"{args.folds}-fold split; {args.budget} iterations per run, offline proposer; held-out ΔAUC = EFE's frozen "
            f"program minus no FE on the same split.\n\n" + summarise(cells, args.routers, args.models) + "\n")
    (out / "summary.md").write_text(text)
    print(text)
    print(f"written: {out / 'summary.md'} ({time.time() - started:.0f}s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
