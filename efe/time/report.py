"""``report.md`` and ``report.json`` of an EFE-Time run, after freezing the winner and scoring it on the held-out windows."""

from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from efe.datasets.ts_store import read_series
from efe.llm.judge import summarize as judge_summary
from efe.llm.judge import summary_line
from efe.llm.ledger import Ledger
from efe.report.plots.write import plots_at_the_end
from efe.rundir.records import CANDIDATE
from efe.search.status import determinism
from efe.steering.memory import memory_markdown
from efe.steering.summary import steering_markdown, steering_summary
from efe.core.specs import TimeSpec
from efe.setting import Choice
from efe.time.heldout import evaluate_program, raw_losses, render_table, significant_losses


def write(cfg: DictConfig, spec: TimeSpec, run_dir: Path, choice: Choice, result: Any, llm: dict,
          iterations: int, started: float, memory: dict | None = None) -> Path:
    """Score the frozen winner on the held-out windows, then write report.json, the plots and report.md."""
    source, winner, selection = choice.source, choice.winner, choice.selection
    series = read_series(run_dir / "data" / "series.parquet")
    row = evaluate_program(source, series, spec.prediction_length, spec.season, spec.heldout.windows,
                           spec.forecaster, spec.quantile_levels, spec.sandbox,
                           spec.seed, examples=4, stride=spec.heldout.stride,
                           se_origins=spec.series_loss.se_origins, prior_dof=spec.series_loss.prior_dof,
                           min_history=spec.windows.min_history)
    max_loss = spec.selection.max_series_loss
    loss_pct = 100.0 * (0.05 if max_loss is None else max_loss)
    row["series_losses"] = {"max_loss_pct": loss_pct, "z": spec.series_loss.z,
                            "raw": raw_losses(row["per_series"], loss_pct),
                            "significant": significant_losses(row["per_series"], loss_pct, spec.series_loss.z)}
    examples = row.pop("examples")
    (run_dir / "heldout_examples.json").write_text(json.dumps(
        {"horizon": spec.prediction_length, "levels": spec.quantile_levels, "examples": examples}))
    totals = Ledger(run_dir, llm.get("prices")).totals()
    candidates = [e for e in result.lineage if e.kind == CANDIDATE]
    valid = sum(1 for e in candidates if e.valid)
    timed = [e.metrics["eval_seconds"] for e in candidates if e.metrics.get("eval_seconds")]
    mean_eval_s = round(sum(timed) / len(timed), 3) if timed else None
    search_windows = max((int(e.metrics.get("n_windows", 0)) for e in result.lineage), default=0)
    data = {
        "dataset": asdict(spec.dataset), "freq": spec.freq, "prediction_length": spec.prediction_length,
        "season": spec.season, "forecaster": spec.forecaster["name"],
        "search": {"llm": llm["backend"], "iterations": iterations, "iterations_done": result.iterations_done,
                   "stop_reason": result.stop_reason, "status": result.status, "candidates": len(candidates),
                   "valid": valid,
                   "llm_calls": totals.calls, "llm_cached": totals.cached, "llm_cost_usd": totals.cost_usd,
                   "wall_s": round(time.time() - started, 1), "judge": judge_summary(run_dir),
                   **determinism(spec.search.executor, llm["backend"])},
        "winner": {"id": winner.id, "iteration": winner.iteration,
                   "fitness": winner.fitness,
                   "mase_ratio": winner.metrics.get("mase_ratio"), "source": source},
        "heldout": [row],
        "selection": selection,
        "evaluation": {"mean_seconds": mean_eval_s, "max_history": spec.windows.max_history,
                       "search_windows": search_windows},
        "sandbox_mode": spec.search.sandbox_mode,
        "steering": steering_summary(result.lineage, run_dir, spec.search.roles),
        "memory": memory,
    }
    (run_dir / "report.json").write_text(json.dumps(data, indent=2, default=str))
    d = data
    md = [f"# EFE-Time report: {d['dataset']['name']}", "",
          f"- {d['dataset']['n_series']} series, frequency {d['freq']}, horizon {d['prediction_length']}, season "
          f"{d['season']}; held-out: the last {spec.heldout.windows} window(s) of each series, never seen by "
          f"the search.",
          f"- Search forecaster: {d['forecaster']}; LLM: {d['search']['llm']}; {d['search']['iterations_done']} of "
          f"{iterations} iterations; search {d['search']['status']} ({d['search']['stop_reason']}); "
          f"{len(candidates)} candidates, {valid} valid; "
          f"LLM calls {totals.calls} (+{totals.cached} cached), ${totals.cost_usd:.4f}.",
          f"- Sandbox isolation of candidate programs: {spec.search.sandbox_mode or 'unknown'}.",
          f"- Deterministic: {d['search']['determinism']}.",
          *summary_line(d["search"]["judge"]),
          f"- Winner: `{d['winner']['id']}` (iteration {d['winner']['iteration']}), search fitness "
          f"{d['winner']['fitness']:.4f}, search MASE ratio {d['winner']['mase_ratio']:.4f}"
          + (f" (the identity: {selection['decision']})." if selection["decision"] in ("no gain found", "not confirmed")
             else f" (the identity: {selection['decision']}: {selection['evidence']['reason']})."
             if selection["decision"] == "not enough evidence" else "."),
          f"- Cost: {search_windows} search windows per evaluation, each forecaster fit on at most "
          f"{spec.windows.max_history} points of history; "
          + (f"{mean_eval_s:.2f} s per scored program on average." if mean_eval_s else "no program was scored."), "",
          "## Held-out windows", "", render_table([row]),
          f"\nPaired held-out gain: {row['gain']['log_mase']:+.4f} ± {row['gain']['se']:.4f} SE in log MASE "
          f"({row['gain']['pct']:+.1f}% geometric-mean MASE change)" + _worst_series_md(row) + ".", "",
          *_evidence_md(selection.get("evidence")),
          *_selection_md(selection, spec.fitness.confidence_z),
          *steering_markdown(d["steering"]), *memory_markdown(d["memory"]),
          "## Winning program", "", "```python", source.rstrip(), "```", ""]
    plots = plots_at_the_end(cfg, run_dir)
    if plots:
        md[md.index("## Winning program"):md.index("## Winning program")] = ["## The search", ""] + [
            (f"[{t}]({r})" if r.endswith(".html") else f"![{t}]({r})") + "\n" for t, r in plots.items()]
    path = run_dir / "report.md"
    path.write_text("\n".join(md))
    return path


def _evidence_md(evidence: dict | None) -> list[str]:
    """The minimum of evidence before a program can be confirmed, and what this run had."""
    if not evidence:
        return []
    had = (f"every series has at least {evidence['per_series_min']:g} effective selection + claim windows (series "
           f"{evidence['worst_series']} the fewest), {evidence['total']:g} over all {evidence['n_series']} series; "
           f"the minimum is {evidence['min_per_series']:g} per series (selection.min_windows_per_series) and "
           f"{evidence['min_total']:g} in total (selection.min_windows_total)")
    verdict = ("enough to confirm a program" if evidence["enough"] else
               f"**not enough: no program can be confirmed, the identity is frozen** ({evidence['reason']})")
    return ["## Evidence", "", f"Evidence before confirming: {had}: {verdict}.", ""]


def _selection_md(selection: dict, z: float) -> list[str]:
    table = selection.get("table") or []
    if not table:
        return []
    said = {"gain": "the best eligible finalist's lower bound is above zero, so it is frozen",
            "no gain found": "no gain found: no eligible finalist's lower bound is above zero, so the identity is "
                             "frozen",
            "not confirmed": "no gain confirmed: the best eligible finalist's lower bound is above zero on the "
                             "selection windows, but the claim windows did not confirm it (selection.confirm), "
                             "so the identity is frozen",
            "gain not required": "the best eligible finalist is frozen although its lower bound is not above zero "
                                 "(selection.require_gain=false)"}[selection["decision"]]
    max_loss = selection.get("max_series_loss")
    rule = ("eligible: valid, no fallback, and no series significantly worse: change + "
            f"{selection.get('series_loss_z', 2.0):g}·SE < -{100 * max_loss:g}% (selection.max_series_loss; the SE "
            f"of one window from {selection.get('se_origins', 0)} origins spread over the series' history, "
            "series_loss)" if max_loss is not None
            else "eligible: valid and no fallback (no per-series rule: selection.max_series_loss is null)")
    rejected = int(selection.get("rejected_for_series") or 0)
    lines = ["## Final selection", "",
             f"The seed (identity) and the best candidates, scored on {selection['windows']} selection window(s) per "
             f"series before the held-out part, never scored during the search. Gain = mean log(MASE identity / "
             f"MASE program) over those windows ± SE; lower bound at z={z:g}; {rule}. Decision: **{said}**."
             + (f" {rejected} finalist(s) with a positive lower bound were not eligible because they hurt a series."
                if rejected else ""), "",
             "| program | search fitness | search gain | selection gain ± SE | lower bound | worst series (gain ± SE) | "
             "series worse than the rule: raw / significant | eligible | windows |",
             "|---|---|---|---|---|---|---|---|---|"]
    for f in table:
        mark = " **(frozen)**" if f["id"] == selection.get("frozen_id") else ""
        eligible = "seed" if f["kind"] == "seed" else (
            "yes" if f["valid"] and f["fallback_rate"] == 0.0 and f.get("series_ok", True) else "no")
        lines.append(f"| `{str(f['id'])[:8]}` ({f['kind']}){mark} | {f['search_fitness']:.4f} | {f['search_gain']:+.4f} "
                     f"| {f['gain']:+.4f} ± {f['gain_se']:.4f} | {f['gain_lcb']:+.4f} | "
                     f"{f.get('worst_series')} ({f.get('worst_series_gain', 0.0):+.4f} ± "
                     f"{f.get('worst_series_se', 0.0):.4f}) | {f.get('series_losses_raw', 0)} / "
                     f"{len(f.get('series_losses_significant') or [])} | {eligible} | {f['n_windows']} |")
    unconfirmed = selection.get("unconfirmed")
    if unconfirmed:
        lo, hi = unconfirmed["interval"]
        lines += ["", f"On the {unconfirmed['n_windows']} claim windows the finalist gained {unconfirmed['gain']:+.4f} "
                  f"log MASE, interval [{lo:+.4f}, {hi:+.4f}]; worst series {unconfirmed['worst_series']} "
                  f"({unconfirmed['worst_series_gain']:+.4f}); series worse than the rule: "
                  f"{unconfirmed.get('series_losses_raw', 0)} raw, "
                  f"{len(unconfirmed.get('series_losses_significant') or [])} significant. A gain must be above zero "
                  "there, and no series significantly worse than the per-series rule allows, for a program to be "
                  "frozen."]
    claimed = selection.get("claimed")
    if claimed:
        lo, hi = claimed["interval"]
        lines += ["", f"Claimed gain of the frozen program: {claimed['gain']:+.4f} log MASE, interval "
                  f"[{lo:+.4f}, {hi:+.4f}] (± {selection.get('interval_z', 2.0):g} SE), from the "
                  f"{claimed['source']}" + (f", {claimed['n_windows']} windows; worst series {claimed['worst_series']} "
                                            f"({claimed['worst_series_gain']:+.4f})" if claimed["n_windows"] else "")
                  + (". This is the estimate to expect on new windows; the selection-window gain above chose the "
                     "program and is optimistic." if claimed["n_windows"] else ".")]
    return lines + [""]


def _worst_series_md(row: dict) -> str:
    per = row.get("per_series_gain_pct") or {}
    if not per:
        return ""
    worst = min(per, key=per.get)
    lost = sum(1 for v in per.values() if v < 0)
    text = f"; worst series {worst} {per[worst]:+.1f}%, {lost} of {len(per)} series worse than the identity"
    losses = row.get("series_losses")
    if losses:
        se = (row.get("per_series") or {}).get(worst, {}).get("se_pct", 0.0)
        text += (f" (worst ± SE {per[worst]:+.1f} ± {se:.1f}%); below -{losses['max_loss_pct']:g}%: "
                 f"{len(losses['raw'])} raw, {len(losses['significant'])} significant (change + {losses['z']:g}·SE "
                 f"< -{losses['max_loss_pct']:g}%, SE from {row.get('se_source')})")
    return text
