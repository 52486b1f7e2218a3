"""``report.md`` and ``report.json``: the held-out table, the winner's source and its features.

A gain is shown with its uncertainty three times, side by side: the search's estimate (on the
folds that chose the program, hence optimistic), the selection-pool estimate (training rows the
search never scored; key ``fresh``) and the held-out result (with its DeLong standard error),
plus a sentence when the held-out part is too small to confirm a gain of the claimed size.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
from omegaconf import DictConfig

from efe.core.config import required
from efe.datasets.split import read_train
from efe.llm.judge import summarize as judge_summary
from efe.llm.judge import summary_line
from efe.llm.ledger import Ledger
from efe.report.plots.write import plots_at_the_end
from efe.rundir.records import CANDIDATE, NO_PROGRAM, LineageEntry
from efe.search.status import determinism
from efe.steering.memory import memory_markdown
from efe.steering.summary import steering_markdown, steering_summary
from efe.core.scorer_names import model_label, scorer_phrase
from efe.core.specs import TabSpec
from efe.core.task import gain_name, metric_name
from efe.tab.selection import no_harm_failed
from efe.setting import Choice
from efe.tab.estimates import estimates
from efe.tab.freeze import TabFrozen
from efe.tab.heldout import score_heldout, scorer_configs
from efe.tab.parallel import worker_count


def search_cost(candidates: list[LineageEntry]) -> dict:
    """Cascade figures: folds and seconds per stage-2 candidate, share that reached full scoring."""
    scored = [e for e in candidates if e.metrics.get("n_folds", 0) > 0]
    if not scored:
        return {"scored_candidates": 0}
    folds = [e.metrics["n_folds"] for e in scored]
    seconds = [e.runtime_s for e in scored if e.runtime_s is not None]
    return {"scored_candidates": len(scored), "mean_folds": float(np.mean(folds)), "max_folds": float(max(folds)),
            "full_scoring_fraction": float(np.mean([e.metrics.get("full_scoring", 0.0) for e in scored])),
            "mean_eval_s": float(np.mean(seconds)) if seconds else None}


def write_report(run_dir: Path, data: dict[str, Any]) -> tuple[Path, Path]:
    json_path = run_dir / "report.json"
    json_path.write_text(json.dumps(data, indent=2, default=str))
    md_path = run_dir / "report.md"
    md_path.write_text(render_markdown(data))
    return md_path, json_path


def _target_phrase(ds: dict) -> str:
    task = ds.get("task", "binary")
    if task == "regression":
        return "regression; metric RMSE (MAE and R² beside it), gain = relative RMSE reduction"
    if task == "multiclass":
        return (f"multiclass, {len(ds.get('classes') or [])} classes "
                f"{', '.join(repr(c) for c in (ds.get('classes') or [])[:8])}; metric macro one-vs-rest ROC-AUC")
    return f"positive class {ds.get('positive_label')!r}"


def render_markdown(d: dict[str, Any]) -> str:
    s = d["search"]
    w = d["winner"]
    task = d["dataset"].get("task", "binary")
    metric, g = metric_name(task), gain_name(task)
    lines = [
        f"# EFE-Tab report: {d['dataset']['name']}",
        "",
        *([f"- {d['dataset']['task_note']}."] if d["dataset"].get("task_note") else []),
        f"- Target: `{d['dataset']['target']}` ({_target_phrase(d['dataset'])}); "
        f"{d['dataset']['train_rows']} training rows, {d['dataset']['heldout_rows']} held-out rows "
        f"(never seen by the search), {d['dataset']['n_features']} input features.",
        *([f"- Held-out part: {d['dataset']['heldout_source']}."] if d["dataset"].get("heldout_source") else []),
        f"- Search scorer: {scorer_phrase(d.get('scorer'), d['search_scorer'])}; fixed for the whole run, "
        f"never tuned per program.",
        f"- LLM: {s['llm']}; {s['iterations_done']} of {s['iterations']} "
        f"iterations; search {s.get('status', 'finished')} ({s['stop_reason']}).",
        f"- Sandbox isolation of candidate programs: {d.get('sandbox_mode') or 'unknown'}.",
        *([f"- Deterministic: {s['determinism']}."] if s.get("determinism") else []),
        f"- Candidates: {s['candidates']} ({s['valid']} valid, {s['invalid']} invalid, {s['no_program']} without a "
        f"program); LLM calls {s['llm_calls']} (+{s['llm_cached']} cached), cost ${s['llm_cost_usd']:.4f}.",
        *summary_line(s.get("judge")),
        f"- Frozen: {_frozen_line(d, g)}",
        *_cost_lines(d.get("search_cost")),
        "",
        *_warnings(d["dataset"].get("warnings", [])),
        *_estimate_lines(d, g),
        f"## Held-out {metric}",
        "",
        f"| model | no feature engineering | EFE program | {g} ± SE ({'DeLong' if task == 'binary' else 'paired bootstrap'}) |",
        "|---|---|---|---|",
    ]
    for row in d["heldout"]:
        se = f" ± {row['delta_se']:.4f}" if row.get("delta_se") is not None else ""
        base, fe = f"{row['auc_no_fe']:.4f}", f"{row['auc_efe']:.4f}"
        if row.get("no_fe") and row.get("efe"):  # regression: MAE and R² beside RMSE
            base += f" (MAE {row['no_fe']['mae']:.4g}, R² {row['no_fe']['r2']:.3f})"
            fe += f" (MAE {row['efe']['mae']:.4g}, R² {row['efe']['r2']:.3f})"
        lines.append(f"| {model_label(row)} | {base} | {fe} | {row['delta']:+.4f}{se} |")
    for name, why in d.get("heldout_skipped", {}).items():
        lines.append(f"| {name} | skipped: {why} | | |")
    if d.get("heldout"):
        others = sorted({str(r["model"]) for r in d["heldout"]} - {str(d["search_scorer"])})
        lines += ["", f"The search scored programs with {d['search_scorer']} only"
                  + (f"; the others ({', '.join(others)}) are comparisons it did not optimise for." if others else ".")]
    if d.get("finalists"):
        sel = d.get("selection", {})
        lines += ["", "## Final selection", "",
                  f"The seed and the best candidates of the search, re-scored on {_evidence(sel)}. A program "
                  f"replaces the identity only if its lower bound there (mean − {float(sel.get('confidence_z', 0)):.2f}·SE"
                  f"{_multiplicity(sel)}) is "
                  f"above zero (selection.require_gain={str(sel.get('require_gain')).lower()}). "
                  f"Outcome: **{sel.get('verdict')}**.", *_design_lines(sel, g),
                  "", f"| program | search fitness | search {g} ± SE | selection fitness | selection {g} ± SE "
                      "| selection lower bound |",
                  "|---|---|---|---|---|---|"]
        for f in d["finalists"]:
            mark = " **(frozen)**" if f["id"] == w["id"] else ""
            fresh = (f"{f['fresh_delta_auc']:+.4f} ± {f['fresh_delta_auc_se']:.4f}" if f["valid"]
                     else f"invalid: {f['reason'][:60]}")
            lines.append(f"| `{str(f['id'])[:8]}` ({f['kind']}){mark} | {f['search_fitness']:.4f} | "
                         f"{f['search_delta_auc']:+.4f} ± {f['search_delta_auc_se']:.4f} | {f['fresh_fitness']:.4f} | "
                         f"{fresh} | {f['fresh_lower_bound']:+.4f} |")
        for f in d["finalists"]:
            for model, r in (f.get("no_harm") or {}).items():
                lines.append(f"\nNo-harm check of `{str(f['id'])[:8]}` with {model} on the same selection folds: {g} "
                             f"{r['delta_auc']:+.4f} ± {r['se']:.4f} "
                             f"({_no_harm_verdict(r)}).")
    lines += [
        "",
        "## Features",
        "",
        f"- New ({len(w['new_columns'])}): {', '.join(f'`{c}`' for c in w['new_columns']) or 'none'}",
        f"- Dropped ({len(w['dropped_columns'])}): {', '.join(f'`{c}`' for c in w['dropped_columns']) or 'none'}",
        "",
    ]
    lines += [*steering_markdown(d.get("steering")), *memory_markdown(d.get("memory"))]
    if d.get("plots"):
        lines += ["## The search", ""]
    for title, rel in d.get("plots", {}).items():
        lines += [f"[{title}]({rel})" if rel.endswith(".html") else f"![{title}]({rel})", ""]
    lines += [
        "## Winning program",
        "",
        "```python",
        w["source"].rstrip(),
        "```",
        "",
        "## Files",
        "",
    ]
    for name, path in d["files"].items():
        lines.append(f"- {name}: `{path}`")
    return "\n".join(lines) + "\n"


def _design_lines(sel: dict, gain: str = "ΔAUC") -> list[str]:
    """The selection design by name, and the smallest gain it could have confirmed on this table."""
    if not sel.get("design"):
        return []
    lines = ["", f"Selection design (selection.multiplicity={sel.get('multiplicity')}): {sel['design']}."]
    if sel.get("min_detectable_delta") is not None:
        lines.append(f"Smallest gain it could have confirmed on this table: {gain} above "
                     f"{sel['min_detectable_delta']:.4f} (z = {float(sel['confidence_z']):.2f} times the finalists' "
                     f"median SE {sel['pool_se']:.4f} on the selection pool); a true gain of {sel['mde_80']:.4f} "
                     "would be confirmed 80% of the time. Smaller gains may be real but cannot be told from noise "
                     "here: more rows (or a larger selection.pool_fraction) lower this.")
    lean = sel.get("lean_first")
    if lean:
        lines.append(f"First finalist: `{lean['id']}` ({lean['changes']} changed columns), a sub-program of the "
                     f"search's best `{lean['instead_of']}` ({lean['its_changes']}) whose search gain was within "
                     f"{float(sel.get('lean_first_se') or 0):g} of its standard errors (selection.lean_first_se): "
                     "columns the search could not tell from noise are left out of the first test.")
        extras = lean.get("extras")
        if extras:
            lines.append(f"Once it was confirmed, the best's extra columns added {extras['delta']:+.4f} "
                         f"(SE {extras['se']:.4f}) on the pool's folds: "
                         + (f"above z = {extras['z']:g} SE, so the search's best is frozen." if extras["kept"] else
                            f"not above z = {extras['z']:g} SE, so the lean program is frozen."))
    return lines


def _multiplicity(sel: dict) -> str:
    """How the selection's z came about: one test's z, widened for the number of finalists tried."""
    single, z = sel.get("confidence_z_single"), sel.get("confidence_z")
    if sel.get("multiplicity") == "maxt":
        return (f"; z = {float(z or 0):.2f} is the value the largest of the finalists' pool z-scores exceeds with "
                f"the probability of one test at z = {float(single or 0):g} when none of them gains (their "
                "correlations on the pool's folds taken into account); the first confirmed in the search's order "
                "is frozen")
    if sel.get("multiplicity") == "fallback":
        return (f"; z is {float(z or 0):.2f} for the search's first finalist and "
                f"{float(sel.get('confidence_z_later') or 0):.2f} for each later one: the one-test error rate at "
                f"z = {float(single or 0):g} is split between them (the first gets "
                f"{1 - float(sel.get('fallback_share') or 0):.0%}"
                + ("; the later ones share the rest as one max-T family, so near-copies of one program count "
                   "about once" if sel.get("fallback_later") == "maxt" else "")
                + "), they are tested in the search's order, fixed before the pool is seen, and the first "
                "confirmed is frozen")
    if sel.get("multiplicity") == "sequential":
        return ("; z is that of one test: the finalists are tested one by one in the search's order, fixed "
                "before the pool is seen, and the first that fails ends the selection")
    if single is None or z is None or abs(float(single) - float(z)) < 1e-9:
        return ""
    return (f"; z = {float(single):g} for one program, Bonferroni-widened for the {sel.get('n_tried')} "
            "finalists tried, so that picking the best of them is not luck")


def _evidence(sel: dict) -> str:
    if sel.get("evidence"):
        return str(sel["evidence"])
    return f"{sel.get('n_folds')}-fold × {sel.get('n_repeats')} fresh folds"


def _warnings(warnings: list[str]) -> list[str]:
    """The data warnings printed before the search, kept in the report."""
    if not warnings:
        return []
    return ["## Data warnings", "", *(f"- {w}" for w in warnings), ""]


def _frozen_line(d: dict, g: str = "ΔAUC") -> str:
    w = d["winner"]
    verdict = d.get("selection", {}).get("verdict", "")
    if w.get("kind") == "seed":
        return (f"the identity (no feature engineering): **{verdict or 'no program beat doing nothing'}**. "
                "That is a valid result: no candidate's gain held up beyond noise on rows the search never scored.")
    return (f"`{w['id']}` from iteration {w['iteration']} ({verdict}); search fitness {w['fitness']:.4f}, "
            f"search {g} {w['delta_auc']:+.4f} ± {w.get('delta_auc_se', 0.0):.4f} over {int(w.get('n_folds', 0))} "
            "paired folds.")


def _cost_lines(cost: dict | None) -> list[str]:
    if not cost or not cost.get("scored_candidates"):
        return []
    secs = f", {cost['mean_eval_s']:.2f} s" if cost.get("mean_eval_s") is not None else ""
    return [f"- Cost: {cost['scored_candidates']} candidates reached scoring; {cost['mean_folds']:.2f} of "
            f"{int(cost['max_folds'])} folds{secs} per candidate on average; "
            f"{100 * cost['full_scoring_fraction']:.0f}% reached full scoring (the cascade stopped the rest)."]


def _estimate_lines(d: dict, g: str = "ΔAUC") -> list[str]:
    e = d.get("estimates")
    if not e:
        return []
    z = e["interval_z"]

    def fmt(x: dict | None) -> str:
        if x is None:
            return "-"
        return f"{x['delta_auc']:+.4f} [{x['low']:+.4f}, {x['high']:+.4f}]"

    lines = ["## How sure is the gain?", "",
             f"{g} of the frozen program against no feature engineering, ± {z}·SE:", "",
             f"| estimate | {g} [interval] | on |", "|---|---|---|",
             f"| search (folds that chose it; optimistic) | {fmt(e['search'])} | {int(e['search']['n_folds'])} folds |"]
    if e.get("fresh"):
        pool = (d.get("selection") or {}).get("pool_rows")
        on = (f"selection pool (training rows the search never scored) | {fmt(e['fresh'])} | "
              f"{int(e['fresh']['n_folds'])} folds over {pool} rows" if pool else
              f"fresh folds of the search's rows (no selection pool) | {fmt(e['fresh'])} | "
              f"{int(e['fresh']['n_folds'])} folds")
        lines.append(f"| {on} |")
    rows = d["dataset"]["heldout_rows"]
    for h in e["heldout"]:
        lines.append(f"| held-out, {h['model']} | {fmt(h)} | {rows} rows |")
    lines.append("")
    if e["frozen_is_identity"]:
        lines += ["No gain was found: the frozen program is the identity, so the held-out Δ is zero by construction.",
                  ""]
    for h in e["heldout"]:
        if not e["frozen_is_identity"]:
            x = h.get("expected")
            agree = (f" Expected on the held-out part from the claim {e['claimed_delta_auc']:+.4f} (its noise and "
                     f"the held-out part's combined): [{x['low']:+.4f}, {x['high']:+.4f}]; the result is "
                     f"{'consistent with' if h['inside_expected'] else 'outside'} it." if x else "")
            lines.append(f"- {h['model']}: {h['note']}.{agree}")
    lines.append("")
    return lines


def write(cfg: DictConfig, spec: TabSpec, run_dir: Path, choice: Choice, frozen: TabFrozen, result: Any,
          llm: dict, iterations: int, started: float, memory: dict | None = None) -> Path:
    """Score the frozen winner on the held-out part, then write report.json, the plots and report.md."""
    source, winner, finalists, selection = choice.source, choice.winner, choice.finalists, choice.selection
    X_train, y_train = read_train(spec.train_path, spec.target)
    X_test, y_test = read_train(run_dir / "data" / "heldout.parquet", spec.target)
    models = scorer_configs(list(cfg.report.models), spec.scorer)
    scorer = frozen.scorer
    held = frozen.held
    score_heldout(held, X_train, y_train, X_test, y_test, models, spec.seed,
                  worker_count(required(cfg, "selection.workers")), spec.task, int(required(cfg, "report.bootstrap")))
    claimed = estimates(winner, frozen.fresh_row, held.rows, float(required(cfg, "report.interval_z")),
                        spec.scorer["name"])

    totals = Ledger(run_dir, llm.get("prices")).totals()
    candidates = [e for e in result.lineage if e.kind == CANDIDATE]
    valid = sum(1 for e in candidates if e.valid)
    data = {
        "dataset": {"name": spec.dataset.name, "target": spec.target,
                    "positive_label": spec.dataset.positive_label, "task": spec.task,
                    "metric": metric_name(spec.task), "gain": gain_name(spec.task),
                    "classes": list(spec.dataset.classes), "task_note": spec.dataset.task_note,
                    "train_rows": len(X_train),
                    "heldout_rows": len(X_test), "n_features": X_train.shape[1],
                    "heldout_source": _heldout_source(run_dir), "warnings": spec.dataset.warnings},
        "search_scorer": spec.scorer["name"],
        "scorer": scorer,
        "sandbox_mode": spec.search.sandbox_mode,
        "search": {"llm": llm["backend"], "iterations": iterations, "iterations_done": result.iterations_done,
                   "stop_reason": result.stop_reason, "status": result.status, "candidates": len(candidates),
                   "valid": valid,
                   "invalid": len(candidates) - valid,
                   "no_program": sum(1 for e in result.lineage if e.kind == NO_PROGRAM),
                   "llm_calls": totals.calls, "llm_cached": totals.cached, "llm_cost_usd": totals.cost_usd,
                   "wall_s": round(time.time() - started, 1), "judge": judge_summary(run_dir),
                   **determinism(spec.search.executor, llm["backend"])},
        "winner": {"id": winner.id, "iteration": winner.iteration,
                   "fitness": winner.score,
                   "delta_auc": winner.metrics.get("delta_auc", 0.0),
                   "delta_auc_se": winner.metrics.get("delta_auc_se", 0.0),
                   "n_folds": winner.metrics.get("n_folds", 0.0), "kind": winner.kind or CANDIDATE,
                   "new_columns": list(winner.new_columns), "dropped_columns": list(winner.dropped_columns),
                   "source": source},
        "heldout": held.rows,
        "heldout_skipped": held.skipped,
        "finalists": finalists,
        "selection": selection,
        "estimates": claimed,
        "search_cost": search_cost(candidates),
        "steering": steering_summary(result.lineage, run_dir, spec.search.roles),
        "memory": memory,
        "files": {"frozen program": "frozen/", "winner source": "best/program.py", "lineage": "lineage.jsonl",
                  "LLM ledger": "llm.jsonl", "dataset context": "context.json", "configuration": "config.yaml",
                  "openevolve output": "evolution/"},
    }
    write_report(run_dir, data)  # report.json first: the plots read the winner from it
    data["plots"] = plots_at_the_end(cfg, run_dir)
    md, _ = write_report(run_dir, data)
    return md


def _heldout_source(run_dir: Path) -> str | None:
    path = run_dir / "data" / "heldout.json"
    return json.loads(path.read_text()).get("source") if path.exists() else None


def _no_harm_verdict(r: dict) -> str:
    """A no-harm record's verdict as the report says it."""
    z = r.get("z")
    if no_harm_failed(r):
        return f"failed: hurt beyond {z:.1f}·SE, not frozen" if z is not None else "failed: not frozen"
    return f"passed: not hurt beyond {z:.1f}·SE" if z is not None else "passed"
