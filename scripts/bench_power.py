#!/usr/bin/env python3
"""Power benchmark: does efe find and confirm a gain that is known to be there, and nothing on the nulls?

    python scripts/bench_power.py [--scorers tree lightgbm] [--signals hmda_ratio titanic_title]
                                  [--rows 1000] [--seeds 0 1] [--strengths 1.0] [--iterations 12]
                                  [--task binary] [--label NAME] [--efe-override KEY=VALUE ...] [--full]

Each cell is one planted table (efe/bench/power.py: a bundled table's columns, rows drawn with
replacement, a target drawn from a few base columns plus ``strength`` x one engineered feature) and
its null (strength 0: the same draw without the feature). For each scorer the oracle (the feature
added by hand) and efe's frozen program (a real ``python -m efe.tab`` run, offline proposer) are
refitted on the training rows and scored on the same --test-rows held-out rows, which no run sees.
Reported per scorer, rows and strength: the oracle's held-out gain, the realised gain, the fraction
captured (summed realised / summed oracle), detection rate (a program frozen on a planted table),
the worst run, and freezes on the nulls (in brackets the false ones: a frozen program whose held-out gain
is not above 2 SE; a null's target still depends on its base columns, so a model can gain for real).
Cells go to <out>/results.jsonl as they finish (an interrupted benchmark resumes); the table is
printed and written to <out>/summary.json.
``--label`` names a selection design (with its --efe-override) so designs can be compared side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SMALL = {"scorers": ["tree", "lightgbm"], "signals": ["hmda_ratio", "titanic_title"], "rows": [1000],
         "seeds": [0, 1], "strengths": [1.0], "iterations": 12}
FULL = {"scorers": ["lightgbm", "tree", "linear", "random_forest"],
        "signals": ["hmda_ratio", "titanic_title", "swiss_product", "swiss_groupdev"],
        "rows": [1000, 5000, 20000], "seeds": [0, 1, 2], "strengths": [0.5, 1.0, 2.0], "iterations": 50}


def run_cell(args, label: str, scorer: str, signal: str, rows: int, seed: int, strength: float, out: Path) -> dict:
    from efe.bench.power import oracle_source, planted_frames, read_run_report, run_efe_tab
    from efe.bench.tab import score_program
    from efe.core.config import compose
    from efe.datasets.tabular import load_heldout, load_tabular

    work = work_dir(out, label, scorer, signal, rows, strength, seed)
    work.mkdir(parents=True, exist_ok=True)
    train_df, test_df = planted_frames(signal, rows, args.test_rows, strength, seed, args.task)
    train_csv, test_csv = work / "train.csv", work / "test.csv"
    train_df.to_csv(train_csv, index=False)
    test_df.to_csv(test_csv, index=False)
    cell: dict = {}
    try:
        train = load_tabular({"path": str(train_csv), "target": "y", "name": "planted", "task": args.task})
        test = load_heldout(test_csv, train)
    except ValueError as exc:  # efe refuses this target (e.g. a numeric one before regression support)
        return {"skipped": f"efe refuses the {args.task} target: {str(exc).splitlines()[0]}"}
    cfg = compose("tab", [f"scorer={scorer}", f"report.models=[{scorer}]", f"seed={seed}"])
    oracle = score_program(oracle_source(signal), train, test, cfg)
    cell["oracle"] = oracle["delta"].get(scorer, float("nan"))
    if args.confirm_only:  # the selection design alone: is the oracle, as the only finalist, confirmed?
        from efe.bench.power import confirm_oracle

        (work / "signal.json").write_text(json.dumps({"signal": signal}))
        design = compose("tab", [f"scorer={scorer}", f"seed={seed}", *args.efe_override])
        return {**cell, **confirm_oracle(train, test, design, work / "confirm")}
    overrides = ["llm=offline", f"scorer={scorer}", f"report.models=[{scorer}]", f"seed={seed}",
                 f"evolution.iterations={args.iterations}", *args.efe_override]
    if args.task != "binary":  # the dataset.task key comes with regression support
        overrides.append(f"dataset.task={args.task}")
    started = time.time()
    proc = run_efe_tab(train_csv, test_csv, work / "run", overrides)
    cell["efe_s"] = time.time() - started
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["(no output)"]
        if args.task != "binary":
            return {"skipped": f"efe refuses the {args.task} target: {tail[0][:300]}"}
        raise RuntimeError(f"efe.tab exited {proc.returncode}: {tail[0][:300]}")
    cell.update(read_run_report(work / "run", scorer))
    cell["replay"] = replay(args.replay, work, cell, train, test, cfg, scorer)
    return cell


def work_dir(out: Path, label: str, scorer: str, signal: str, rows: int, strength: float, seed: int) -> Path:
    return out / "runs" / label / scorer / signal / f"n{rows}" / f"s{strength:g}" / f"seed{seed}"


def replay(designs: list[str], work: Path, by_run: dict, train, test, cfg, scorer: str) -> dict:
    """Other selection designs on the same search and pool estimates: what each would have frozen, held out."""
    from efe.bench.power import program_of, replay_choice
    from efe.bench.tab import score_program

    report = json.loads((work / "run" / "report.json").read_text())
    frozen_id = (report.get("winner") or {}).get("id")
    out = {}
    for design in designs:
        chosen = replay_choice(work / "run", design)
        if chosen is None:
            realised, se = 0.0, 0.0  # the identity: the same predictions as no feature engineering
        elif chosen == frozen_id:
            realised, se = by_run["realised"], by_run.get("realised_se")
        else:
            scored = score_program(program_of(work / "run", chosen), train, test, cfg)
            realised, se = scored["delta"].get(scorer), scored["delta_se"].get(scorer)
        out[design] = {"frozen_identity": chosen is None, "realised": realised, "realised_se": se}
    return out


def replay_again(cell: dict, args, out: Path) -> None:
    """Decide the replayed designs again with this code, on a finished cell's run directory."""
    from efe.core.config import compose
    from efe.datasets.tabular import load_heldout, load_tabular

    work = work_dir(out, cell["label"], cell["scorer"], cell["signal"], cell["rows"], cell["strength"], cell["seed"])
    train = load_tabular({"path": str(work / "train.csv"), "target": "y", "name": "planted", "task": cell["task"]})
    test = load_heldout(work / "test.csv", train)
    cfg = compose("tab", [f"scorer={cell['scorer']}", f"report.models=[{cell['scorer']}]", f"seed={cell['seed']}"])
    cell["replay"] = replay(args.replay, work, cell, train, test, cfg, cell["scorer"])


def expand(cells: list[dict]) -> list[dict]:
    """Each cell as run, plus one per replayed selection design (label ``<label>/replay:<design>``)."""
    out = []
    for c in cells:
        out.append(c)
        for design, r in (c.get("replay") or {}).items():
            out.append({**c, "realised_se": None, **r, "label": f"{c['label']}/replay:{design}", "min_detectable": None})
    return out


def summarise_confirm(cells: list[dict]) -> tuple[list[dict], str]:
    """--confirm-only cells: per design, scorer, rows and strength, how often the oracle was confirmed."""
    groups: dict[tuple, list[dict]] = {}
    for c in cells:
        if "confirmed" in c:
            groups.setdefault((c["label"], c["scorer"], c["rows"], c["strength"]), []).append(c)
    rows = [{"design": k[0], "scorer": k[1], "rows": k[2], "strength": k[3], "runs": len(v),
             "oracle_gain": float(np.mean([c["oracle"] for c in v])),
             "pool_se": float(np.median([c["pool_se"] for c in v])), "z": float(v[0]["z"]),
             "pool_rows": v[0]["pool_rows"], "confirmed": sum(c["confirmed"] for c in v)}
            for k, v in sorted(groups.items())]
    header = ["design", "scorer", "rows", "strength", "oracle ΔAUC held out", "pool rows", "pool SE (median)", "z",
              "confirmed (null: false freezes)"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        lines.append(f"| {r['design']} | {r['scorer']} | {r['rows']} | {r['strength']:g} | {r['oracle_gain']:+.4f} | "
                     f"{r['pool_rows']} | {r['pool_se']:.4f} | {r['z']:.2f} | {r['confirmed']}/{r['runs']} |")
    return rows, "\n".join(lines)


def summarise(cells: list[dict]) -> tuple[list[dict], str]:
    groups: dict[tuple, list[dict]] = {}
    for c in expand(cells):
        if "realised" in c:
            groups.setdefault((c["label"], c["task"], c["scorer"], c["rows"]), []).append(c)
    rows = []
    for (label, task, scorer, n), mine in sorted(groups.items()):
        planted = [c for c in mine if c["strength"] > 0]
        nulls = [c for c in mine if c["strength"] == 0]
        oracle = np.array([c["oracle"] for c in planted])
        realised = np.array([c["realised"] for c in planted])
        row = {"design": label, "task": task, "scorer": scorer, "rows": n, "planted_runs": len(planted),
               "oracle_gain": float(oracle.mean()) if planted else None,
               "realised_gain": float(realised.mean()) if planted else None,
               "captured": float(realised.sum() / oracle.sum()) if planted and oracle.sum() > 0 else None,
               "detected": sum(not c["frozen_identity"] for c in planted),
               "null_runs": len(nulls), "null_freezes": sum(not c["frozen_identity"] for c in nulls),
               "false_freezes": sum(not c["frozen_identity"] and not heldout_gain(c) for c in nulls),
               "worst": float(min(c["realised"] for c in mine)),
               "min_detectable": _median([c.get("min_detectable") for c in mine]),
               "by_strength": {}}
        for s in sorted({c["strength"] for c in planted}):
            at = [c for c in planted if c["strength"] == s]
            row["by_strength"][f"{s:g}"] = {"runs": len(at), "oracle": float(np.mean([c["oracle"] for c in at])),
                                            "realised": float(np.mean([c["realised"] for c in at])),
                                            "detected": sum(not c["frozen_identity"] for c in at)}
        rows.append(row)
    header = ["design", "task", "scorer", "rows", "oracle ΔAUC", "efe ΔAUC", "captured", "detected",
              "null freezes (false)", "worst run", "MDE (median)", "power curve: strength → oracle / detected"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]

    def num(x, fmt="+.4f"):
        return "-" if x is None or (isinstance(x, float) and not np.isfinite(x)) else format(x, fmt)

    for r in rows:
        curve = "; ".join(f"{s}: {v['oracle']:+.4f} / {v['detected']}/{v['runs']}" for s, v in r["by_strength"].items())
        lines.append(f"| {r['design']} | {r['task']} | {r['scorer']} | {r['rows']} | {num(r['oracle_gain'])} | "
                     f"{num(r['realised_gain'])} | {num(r['captured'], '.0%')} | {r['detected']}/{r['planted_runs']} | "
                     f"{r['null_freezes']}/{r['null_runs']} ({r['false_freezes']}) | {num(r['worst'])} | {num(r['min_detectable'], '.4f')} | "
                     f"{curve} |")
    return rows, "\n".join(lines)


def heldout_gain(cell: dict, z: float = 2.0) -> bool:
    """A frozen program's held-out gain is above ``z`` of its standard errors: on a null table, a real gain for
    this model from a feature other than the planted one (the null's target is still a function of its base
    columns), not a false discovery. Without a recorded SE it counts as false."""
    se = cell.get("realised_se")
    return se is not None and np.isfinite(float(se)) and float(se) > 0 and float(cell["realised"]) > z * float(se)


def _median(values: list) -> float | None:
    values = [float(v) for v in values if v is not None]
    return float(np.median(values)) if values else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--full", action="store_true", help="the README figures: " + json.dumps(FULL))
    parser.add_argument("--scorers", nargs="+")
    parser.add_argument("--signals", nargs="+")
    parser.add_argument("--rows", nargs="+", type=int, help="training rows of each planted table")
    parser.add_argument("--seeds", nargs="+", type=int)
    parser.add_argument("--strengths", nargs="+", type=float, help="planted effects (the null, 0, is always run)")
    parser.add_argument("--iterations", type=int)
    parser.add_argument("--test-rows", type=int, default=5000, help="held-out rows of every cell")
    parser.add_argument("--task", default="binary", choices=["binary", "regression"])
    parser.add_argument("--no-nulls", action="store_true", help="skip the null tables")
    parser.add_argument("--label", default="default", help="names the selection design of this invocation")
    parser.add_argument("--efe-override", action="append", default=[], metavar="KEY=VALUE",
                        help="a Hydra override for every efe.tab run (repeatable), e.g. selection.top_k=1")
    parser.add_argument("--replay", nargs="*", default=["sequential", "bonferroni"],
                        help="selection designs (selection.multiplicity values) also decided on each run's own pool "
                             "estimates: the finalist each would have frozen is scored on the same held-out rows")
    parser.add_argument("--replay-again", action="store_true",
                        help="decide the --replay designs again (with this code) on every finished cell before the table")
    parser.add_argument("--confirm-only", action="store_true",
                        help="no search: the oracle program is the only finalist of the final selection (with the "
                             "--efe-override settings); measures the selection design's power and false freezes")
    parser.add_argument("--out", default="bench/power")
    parser.add_argument("--summarise-only", action="store_true")
    args = parser.parse_args()
    base = FULL if args.full else SMALL
    for key, value in base.items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    from efe.bench.power import SIGNALS

    unknown = [s for s in args.signals if s not in SIGNALS]
    if unknown:
        parser.error(f"unknown signal(s) {', '.join(unknown)}; known: {', '.join(SIGNALS)}")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results = out / "results.jsonl"
    from efe.rundir.jsonl import read_jsonl

    done = {(c["label"], c["task"], c["scorer"], c["signal"], c["rows"], c["seed"], c["strength"]): c
            for c in read_jsonl(results, warn=True)}
    strengths = ([] if args.no_nulls else [0.0]) + [s for s in args.strengths if s > 0]
    started = time.time()
    skipped_task = None
    for scorer in args.scorers:
        for signal in args.signals:
            for n in args.rows:
                for seed in args.seeds:
                    for strength in strengths:
                        key = (args.label, args.task, scorer, signal, n, seed, strength)
                        if key in done or args.summarise_only or skipped_task:
                            continue
                        print(f"[{time.time() - started:6.0f}s] {args.label} {args.task} {scorer} {signal} n={n} "
                              f"seed={seed} strength={strength:g}", file=sys.stderr, flush=True)
                        cell = dict(zip(("label", "task", "scorer", "signal", "rows", "seed", "strength"), key))
                        try:
                            cell.update(run_cell(args, args.label, scorer, signal, n, seed, strength, out))
                        except Exception as exc:  # noqa: BLE001 - one failed cell must not sink the benchmark
                            cell["error"] = f"{type(exc).__name__}: {exc}"[:500]
                            with (out / "errors.log").open("a") as fh:
                                fh.write(f"{key}\n{traceback.format_exc()}\n")
                            print(f"  failed: {cell['error']}", file=sys.stderr)
                        if "skipped" in cell:
                            skipped_task = cell["skipped"]
                            print(f"  skipped: {skipped_task}", file=sys.stderr)
                            continue
                        if "confirmed" in cell:
                            print(f"  oracle {cell['oracle']:+.4f}  pool {cell['pool_delta']:+.4f} ± {cell['pool_se']:.4f} "
                                  f"on {cell['pool_rows']} rows: {'confirmed' if cell['confirmed'] else 'not confirmed'}",
                                  file=sys.stderr, flush=True)
                        if "realised" in cell:
                            print(f"  oracle {cell['oracle']:+.4f}  efe {cell['realised']:+.4f}  "
                                  f"{'identity' if cell['frozen_identity'] else 'frozen'}  ({cell['efe_s']:.0f}s)",
                                  file=sys.stderr, flush=True)
                        with results.open("a") as fh:
                            fh.write(json.dumps(cell) + "\n")
                        done[key] = cell
    cells = list(done.values())
    if args.replay_again:
        for cell in cells:
            if "realised" in cell:
                replay_again(cell, args, out)
    rows, markdown = summarise(cells)
    confirm_rows, confirm_md = summarise_confirm(cells)
    if confirm_rows:
        markdown += "\n\nConfirmation step alone (--confirm-only: the oracle as the only finalist):\n\n" + confirm_md
    (out / "summary.json").write_text(json.dumps({"rows": rows, "confirm_only": confirm_rows, "skipped": skipped_task,
                                                  "command": " ".join(sys.argv)}, indent=1))
    print(markdown)
    if skipped_task:
        print(f"\n{args.task}: skipped ({skipped_task})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
