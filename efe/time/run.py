"""One EFE-Time run: load → split → context → spec → search → freeze → held-out report."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from efe.cli_common import open_run, say
from efe.config import plain_dict, required
from efe.datasets.timeseries import check_lengths, load_timeseries
from efe.datasets.ts_store import read_series, write_series
from efe.freeze import freeze
from efe.llm.judge import summarize as judge_summary
from efe.llm.judge import summary_line
from efe.llm.ledger import Ledger
from efe.plot import write_plots
from efe.resources import evaluator_file, seed_program
from efe.sandbox import SandboxLimits
from efe.search.memory import (
    fingerprint,
    memory_markdown,
    memory_spec,
    remember_run,
    time_schema,
)
from efe.search.oe_config import build_config
from efe.search.runner import run_search
from efe.search.steering import roles_spec, steering_markdown, steering_summary
from efe.specs import TimeSpec, build
from efe.time.context import build_context
from efe.time.heldout import evaluate_program, render_table
from efe.time.prompts import TEMPLATE_DIR, system_message
from efe.time.roles import applicable_roles
from efe.time.selection import select_time
from efe.tracking import track_run
from evaluators.timeseries.forecasters import with_max_history
from evaluators.timeseries.windows import span, stride_steps

SEED_PROGRAM = seed_program("time")
EVALUATOR_FILE = evaluator_file("time")


def prepare_time_run(cfg: DictConfig, run_dir: Path) -> tuple[TimeSpec, dict]:
    ds = load_timeseries(plain_dict(cfg.dataset))
    h, season = int(ds.prediction_length), int(ds.season)
    n_test, n_val = int(cfg.heldout.windows), int(cfg.windows.n_windows)
    sel_cfg = required(cfg, "selection")
    n_sel = int(sel_cfg["windows"] or 0)
    n_claim = int(sel_cfg["claim_windows"] or 0) if n_sel else 0
    stride = stride_steps(required(cfg, "windows.stride"), h)
    test_stride = stride_steps(required(cfg, "heldout.stride"), h)
    test_span, sel_span = span(h, n_test, test_stride), span(h, n_sel, stride) + span(h, n_claim, stride)
    min_history = int(cfg.windows.min_history_horizons) * h
    check_lengths(ds, test_span + sel_span + h + min_history)
    max_history = required(cfg, "windows.max_history") or max(int(cfg.windows.max_history_seasons) * season,
                                                        int(cfg.windows.max_history_horizons) * h)
    train = {k: v[: len(v) - test_span] for k, v in ds.series.items()}
    (run_dir / "data").mkdir(parents=True, exist_ok=True)
    write_series(run_dir / "data" / "train.parquet", train)
    write_series(run_dir / "data" / "series.parquet", ds.series)
    context = build_context(ds.name, ds.description, train, ds.freq, h, ds.season)
    (run_dir / "context.json").write_text(json.dumps(context, indent=2))
    spec = build(TimeSpec, {
        "setting": "time", "run_dir": str(run_dir.resolve()), "seed": int(cfg.seed), "train_path": str((run_dir / "data" / "train.parquet").resolve()),
        "dataset": {"name": ds.name, "description": ds.description, "warnings": ds.warnings,
                    "n_series": len(ds.series)},
        "freq": ds.freq, "prediction_length": h, "season": int(ds.season),
        "quantile_levels": list(cfg.quantile_levels),
        "forecaster": with_max_history(plain_dict(cfg.forecaster), int(max_history)),
        "windows": {"n_windows": n_val, "stride": stride, "min_history": min_history, "end_offset": sel_span,
                    "max_history": int(max_history), "max_total": int(required(cfg, "windows.max_total") or 0),
                    "n_rotations": int(cfg.windows.n_rotations),
                    "min_instances_per_rotation": int(cfg.windows.min_instances_per_rotation)},
        "selection": {"windows": n_sel, "claim_windows": n_claim, "top_k": int(sel_cfg["top_k"] or 0),
                      "require_gain": bool(sel_cfg["require_gain"]),
                      "confirm": bool(sel_cfg["confirm"]),
                      "min_gain": float(sel_cfg["min_gain"] or 0.0),
                      "max_series_loss": (None if sel_cfg["max_series_loss"] is None
                                          else float(sel_cfg["max_series_loss"])),
                      "interval_z": float(sel_cfg["interval_z"])},
        "heldout": {"windows": n_test, "stride": test_stride},
        "gate": required(cfg, "gate"), "fitness": required(cfg, "fitness"), "sandbox": required(cfg, "sandbox"),
        "search": None,
    })
    shutil.copyfile(SEED_PROGRAM, run_dir / "seed_program.py")
    return spec, context


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
    rule = ("eligible: valid, no fallback, and no series' mean gain below "
            f"-{max_loss:g} log MASE (selection.max_series_loss)" if max_loss is not None
            else "eligible: valid and no fallback (no per-series rule: selection.max_series_loss is null)")
    rejected = int(selection.get("rejected_for_series") or 0)
    lines = ["## Final selection", "",
             f"The seed (identity) and the best candidates, scored on {selection['windows']} selection window(s) per "
             f"series before the held-out part, never scored during the search. Gain = mean log(MASE identity / "
             f"MASE program) over those windows ± SE; lower bound at z={z:g}; {rule}. Decision: **{said}**."
             + (f" {rejected} finalist(s) with a positive lower bound were not eligible because they hurt a series."
                if rejected else ""), "",
             "| program | search fitness | search gain | selection gain ± SE | lower bound | worst series (gain) | "
             "eligible | windows |",
             "|---|---|---|---|---|---|---|---|"]
    for f in table:
        mark = " **(frozen)**" if f["id"] == selection.get("frozen_id") else ""
        eligible = "seed" if f["kind"] == "seed" else (
            "yes" if f["valid"] and f["fallback_rate"] == 0.0 and f.get("series_ok", True) else "no")
        lines.append(f"| `{str(f['id'])[:8]}` ({f['kind']}){mark} | {f['search_fitness']:.4f} | {f['search_gain']:+.4f} "
                     f"| {f['gain']:+.4f} ± {f['gain_se']:.4f} | {f['gain_lcb']:+.4f} | "
                     f"{f.get('worst_series')} ({f.get('worst_series_gain', 0.0):+.4f}) | {eligible} | "
                     f"{f['n_windows']} |")
    unconfirmed = selection.get("unconfirmed")
    if unconfirmed:
        lo, hi = unconfirmed["interval"]
        lines += ["", f"On the {unconfirmed['n_windows']} claim windows the finalist gained {unconfirmed['gain']:+.4f} "
                  f"log MASE, interval [{lo:+.4f}, {hi:+.4f}]; worst series {unconfirmed['worst_series']} "
                  f"({unconfirmed['worst_series_gain']:+.4f}). A gain must be above zero there, and no series worse "
                  "than the per-series rule allows, for a program to be frozen."]
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


def _with_steering(cfg: DictConfig, spec: TimeSpec, context: dict) -> tuple[TimeSpec, dict, dict]:
    """The search spec's proposer roles and memory (fingerprint: dataset name, frequency, horizon, season)."""
    shape = {"freq": spec.freq, "prediction_length": spec.prediction_length, "season": spec.season}
    key = fingerprint("time", shape | {"dataset": spec.dataset.name})
    return spec, context, {"roles": roles_spec(required(cfg, "proposer"), "time", applicable_roles(context)),
                           "memory": memory_spec(required(cfg, "memory"), key, time_schema(shape), "time")}


def _worst_series_md(row: dict) -> str:
    per = row.get("per_series_gain_pct") or {}
    if not per:
        return ""
    worst = min(per, key=per.get)
    lost = sum(1 for v in per.values() if v < 0)
    return f"; worst series {worst} {per[worst]:+.1f}%, {lost} of {len(per)} series worse than the identity"


def run_time(cfg: DictConfig, run_dir: Path) -> Path:
    started = time.time()
    iterations = int(cfg.evolution.iterations)
    spec, context, llm, spec_path, resume = open_run(cfg, run_dir, "efe.time",
                                                     lambda: _with_steering(cfg, *prepare_time_run(cfg, run_dir)))

    backend = ("offline proposer (no LLM endpoint configured; set EFE_LLM_API_BASE or use llm=openai "
               "llm.api_base=... to let a model write the programs)" if llm["backend"] == "offline" else llm["backend"])
    say(f"efe.time: dataset {spec.dataset.name} ({spec.dataset.n_series} series, horizon "
        f"{spec.prediction_length}, season {spec.season}), forecaster {spec.forecaster['name']}, "
        f"{iterations} iterations")
    say(f"LLM: {backend}")
    say(f"run directory: {run_dir}")
    seed_source = (run_dir / "seed_program.py").read_text()
    oe_config = build_config(plain_dict(cfg.evolution.openevolve), llm,
                             system_message=system_message(spec, context, seed_source),
                             template_dir=str(TEMPLATE_DIR), seed=int(cfg.seed), iterations=iterations,
                             output_dir=str(run_dir / "evolution"))
    result = run_search(run_dir, spec_path, run_dir / "seed_program.py", EVALUATOR_FILE, oe_config, iterations,
                        llm, resume=resume, score_label="MASE ratio", score_key="mase_ratio")
    say(f"search {result.status} ({result.stop_reason}); scoring the winner on the held-out windows")
    winner = result.best or {"id": "seed", "iteration": 0, "metrics": {"combined_score": 0.5, "mase_ratio": 1.0}}
    source = result.best_code or seed_source
    selection: dict = {"decision": "skipped", "windows": spec.selection.windows, "table": [],
                       "interval_z": spec.selection.interval_z}
    if result.best is not None and spec.selection.windows:
        say(f"final selection: scoring the seed and the {spec.selection.top_k} best candidates on "
            f"{spec.selection.windows} selection window(s) the search never saw")
        picked = select_time(result.lineage, run_dir, spec)
        selection.update(decision=picked.decision, table=picked.table, best=picked.best, claimed=picked.claimed,
                         rejected_for_series=picked.rejected_for_series, unconfirmed=picked.unconfirmed,
                         claim_windows=spec.selection.claim_windows,
                         max_series_loss=spec.selection.max_series_loss)
        if picked.chosen is not None:
            winner = picked.chosen
            source = (run_dir / "programs" / f"{picked.chosen['code_sha256']}.py").read_text()
        say(f"final selection: {picked.decision}")
    selection["frozen_id"] = winner.get("id")
    memory = remember_run(required(cfg, "memory"), spec, run_dir, result.lineage, result.best, winner)
    (run_dir / "best").mkdir(exist_ok=True)
    (run_dir / "best" / "program.py").write_text(source)
    (run_dir / "best" / "info.json").write_text(json.dumps(winner, indent=2, default=str))
    report = _finish(cfg, spec, run_dir, source, winner, result, llm, iterations, started, selection, memory)
    track_run(cfg, run_dir, "time")
    say(f"\nDone in {time.time() - started:.0f}s. Run directory: {run_dir}")
    say(f"  report:          {report}")
    say(f"  frozen program:  {run_dir / 'frozen'}")
    say(f"  lineage:         {run_dir / 'lineage.jsonl'} ({len(result.lineage)} entries)")
    say(f"  transfer with:   python -m efe.transfer run={run_dir} forecasters=[seasonal_naive,ets,theta]")
    return run_dir


def _finish(cfg: DictConfig, spec: TimeSpec, run_dir: Path, source: str, winner: dict, result: Any, llm: dict,
            iterations: int, started: float, selection: dict, memory: dict | None = None) -> Path:
    series = read_series(run_dir / "data" / "series.parquet")
    row = evaluate_program(source, series, spec.prediction_length, spec.season, spec.heldout.windows,
                           spec.forecaster, spec.quantile_levels, SandboxLimits.from_mapping(asdict(spec.sandbox)),
                           spec.seed, examples=4, stride=spec.heldout.stride)
    examples = row.pop("examples")
    (run_dir / "heldout_examples.json").write_text(json.dumps(
        {"horizon": spec.prediction_length, "levels": spec.quantile_levels, "examples": examples}))
    freeze(run_dir / "frozen", "time", source, {}, extra={
        "dataset": spec.dataset.name, "freq": spec.freq, "prediction_length": spec.prediction_length,
        "season": spec.season, "forecaster": spec.forecaster["name"],
        "search_fitness": winner["metrics"].get("combined_score"),
        "search_mase_ratio": winner["metrics"].get("mase_ratio"), "heldout": row,
        "note": "time-series programs are fitted on each history at forecast time; the frozen state is empty",
    })
    totals = Ledger(run_dir, llm.get("prices")).totals()
    candidates = [e for e in result.lineage if e.get("kind") == "candidate"]
    valid = sum(1 for e in candidates if e.get("metrics", {}).get("valid") == 1.0)
    timed = [e["metrics"]["eval_seconds"] for e in candidates if e.get("metrics", {}).get("eval_seconds")]
    mean_eval_s = round(sum(timed) / len(timed), 3) if timed else None
    search_windows = max((int(e.get("metrics", {}).get("n_windows", 0)) for e in result.lineage), default=0)
    data = {
        "dataset": asdict(spec.dataset), "freq": spec.freq, "prediction_length": spec.prediction_length,
        "season": spec.season, "forecaster": spec.forecaster["name"],
        "search": {"llm": llm["backend"], "iterations": iterations, "iterations_done": result.iterations_done,
                   "stop_reason": result.stop_reason, "status": result.status, "candidates": len(candidates),
                   "valid": valid,
                   "llm_calls": totals.calls, "llm_cached": totals.cached, "llm_cost_usd": totals.cost_usd,
                   "wall_s": round(time.time() - started, 1), "judge": judge_summary(run_dir)},
        "winner": {"id": winner.get("id"), "iteration": winner.get("iteration"),
                   "fitness": winner["metrics"].get("combined_score"),
                   "mase_ratio": winner["metrics"].get("mase_ratio"), "source": source},
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
          *summary_line(d["search"]["judge"]),
          f"- Winner: `{d['winner']['id']}` (iteration {d['winner']['iteration']}), search fitness "
          f"{d['winner']['fitness']:.4f}, search MASE ratio {d['winner']['mase_ratio']:.4f}"
          + (f" (the identity: {selection['decision']})." if selection["decision"] in ("no gain found", "not confirmed")
             else "."),
          f"- Cost: {search_windows} search windows per evaluation, each forecaster fit on at most "
          f"{spec.windows.max_history} points of history; "
          + (f"{mean_eval_s:.2f} s per scored program on average." if mean_eval_s else "no program was scored."), "",
          "## Held-out windows", "", render_table([row]),
          f"\nPaired held-out gain: {row['gain']['log_mase']:+.4f} ± {row['gain']['se']:.4f} SE in log MASE "
          f"({row['gain']['pct']:+.1f}% geometric-mean MASE change)" + _worst_series_md(row) + ".", "",
          *_selection_md(selection, spec.fitness.confidence_z),
          *steering_markdown(d["steering"]), *memory_markdown(d["memory"]),
          "## Winning program", "", "```python", source.rstrip(), "```", ""]
    plots = write_plots(run_dir)
    if plots:
        md[md.index("## Winning program"):md.index("## Winning program")] = ["## The search", ""] + [
            (f"[{t}]({r})" if r.endswith(".html") else f"![{t}]({r})") + "\n" for t, r in plots.items()]
    path = run_dir / "report.md"
    path.write_text("\n".join(md))
    return path
