"""One EFE-Time run: load → split → context → spec → search → freeze → held-out report."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from efe.cli_common import open_run, say
from efe.config import plain_dict
from efe.datasets.ts_store import read_series, write_series
from efe.freeze import freeze
from efe.llm.judge import summarize as judge_summary
from efe.llm.judge import summary_line
from efe.llm.ledger import Ledger
from efe.sandbox import SandboxLimits
from efe.search.oe_config import build_config
from efe.search.runner import run_search

ROOT = Path(__file__).resolve().parents[2]
SEED_PROGRAM = ROOT / "programs" / "time_identity.py"
EVALUATOR_FILE = ROOT / "evaluators" / "time.py"


def prepare_time_run(cfg: DictConfig, run_dir: Path) -> tuple[dict, dict]:
    from efe.datasets.timeseries import check_lengths, load_timeseries
    from efe.time.context import build_context

    ds = load_timeseries(plain_dict(cfg.dataset))
    h = int(ds.prediction_length)
    n_test, n_val = int(cfg.heldout.windows), int(cfg.windows.n_windows)
    min_history = int(cfg.windows.min_history_horizons) * h
    check_lengths(ds, n_test * h + h + min_history)
    train = {k: v[: len(v) - n_test * h] for k, v in ds.series.items()}
    (run_dir / "data").mkdir(parents=True, exist_ok=True)
    write_series(run_dir / "data" / "train.parquet", train)
    write_series(run_dir / "data" / "series.parquet", ds.series)
    context = build_context(ds.name, ds.description, train, ds.freq, h, ds.season)
    (run_dir / "context.json").write_text(json.dumps(context, indent=2))
    spec = {
        "setting": "time", "seed": int(cfg.seed), "train_path": str((run_dir / "data" / "train.parquet").resolve()),
        "dataset": {"name": ds.name, "description": ds.description, "warnings": ds.warnings,
                    "n_series": len(ds.series)},
        "freq": ds.freq, "prediction_length": h, "season": int(ds.season),
        "quantile_levels": list(cfg.quantile_levels),
        "forecaster": plain_dict(cfg.forecaster),
        "windows": {"n_windows": n_val, "min_history": min_history, "n_rotations": int(cfg.windows.n_rotations),
                    "min_instances_per_rotation": int(cfg.windows.min_instances_per_rotation)},
        "heldout": {"windows": n_test},
        "gate": plain_dict(cfg.gate), "fitness": plain_dict(cfg.fitness), "sandbox": plain_dict(cfg.sandbox),
    }
    shutil.copyfile(SEED_PROGRAM, run_dir / "seed_program.py")
    return spec, context


def _finalists_md(finalists: list[dict], winner: dict) -> list[str]:
    if not finalists:
        return []
    lines = ["## Final selection", "", "The seed and the best candidates, re-scored on every group of validation "
             "windows; the best mean fitness is frozen.", "",
             "| program | search fitness | mean fitness | worst group | mean MASE ratio |", "|---|---|---|---|---|"]
    for f in finalists:
        mark = " **(frozen)**" if f["id"] == winner.get("id") else ""
        lines.append(f"| `{str(f['id'])[:8]}` ({f['kind']}){mark} | {f['search_fitness']:.4f} | {f['mean_fitness']:.4f} | "
                     f"{f['min_fitness']:.4f} | {f['mean_mase_ratio']:.4f} |")
    return lines + [""]


def run_time(cfg: DictConfig, run_dir: Path) -> Path:
    from efe.time.prompts import TEMPLATE_DIR, system_message

    started = time.time()
    iterations = int(cfg.evolution.iterations)
    spec, context, llm, spec_path, resume = open_run(cfg, run_dir, "efe.time", lambda: prepare_time_run(cfg, run_dir))

    backend = ("offline proposer (no LLM endpoint configured; set EFE_LLM_API_BASE or use llm=openai "
               "llm.api_base=... to let a model write the programs)" if llm["backend"] == "offline" else llm["backend"])
    say(f"efe.time: dataset {spec['dataset']['name']} ({spec['dataset']['n_series']} series, horizon "
        f"{spec['prediction_length']}, season {spec['season']}), forecaster {spec['forecaster']['name']}, "
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
    say(f"search finished ({result.stop_reason}); scoring the winner on the held-out windows")
    winner = result.best or {"id": "seed", "iteration": 0, "metrics": {"combined_score": 0.5, "mase_ratio": 1.0}}
    source = result.best_code or seed_source
    finalists: list[dict] = []
    top_k = int(cfg.get("selection", {}).get("top_k", 0) or 0)
    if top_k > 0 and result.best is not None:
        from efe.search.finalists import select
        from evaluators.timeseries.evaluator import TimeEvaluator

        say(f"final selection: re-scoring the seed and the {top_k} best candidates on every window group")
        chosen, finalists = select(result.lineage, run_dir, lambda: TimeEvaluator(spec), top_k, "mase_ratio",
                                   higher_is_better=False)
        if chosen is not None:
            winner = chosen
            source = (run_dir / "programs" / f"{chosen['code_sha256']}.py").read_text()
    (run_dir / "best").mkdir(exist_ok=True)
    (run_dir / "best" / "program.py").write_text(source)
    (run_dir / "best" / "info.json").write_text(json.dumps(winner, indent=2, default=str))
    report = _finish(cfg, spec, run_dir, source, winner, result, llm, iterations, started, finalists)
    say(f"\nDone in {time.time() - started:.0f}s. Run directory: {run_dir}")
    say(f"  report:          {report}")
    say(f"  frozen program:  {run_dir / 'frozen'}")
    say(f"  lineage:         {run_dir / 'lineage.jsonl'} ({len(result.lineage)} entries)")
    say(f"  transfer with:   python -m efe.transfer run={run_dir} forecasters=[seasonal_naive,ets,theta]")
    return run_dir


def _finish(cfg: DictConfig, spec: dict, run_dir: Path, source: str, winner: dict, result: Any, llm: dict,
            iterations: int, started: float, finalists: list[dict]) -> Path:
    from efe.time.heldout import evaluate_program, render_table

    series = read_series(run_dir / "data" / "series.parquet")
    row = evaluate_program(source, series, spec["prediction_length"], spec["season"], spec["heldout"]["windows"],
                           spec["forecaster"], spec["quantile_levels"], SandboxLimits.from_mapping(spec["sandbox"]),
                           int(spec["seed"]), examples=4)
    examples = row.pop("examples")
    (run_dir / "heldout_examples.json").write_text(json.dumps(
        {"horizon": spec["prediction_length"], "levels": spec["quantile_levels"], "examples": examples}))
    freeze(run_dir / "frozen", "time", source, {}, extra={
        "dataset": spec["dataset"]["name"], "freq": spec["freq"], "prediction_length": spec["prediction_length"],
        "season": spec["season"], "forecaster": spec["forecaster"]["name"],
        "search_fitness": winner["metrics"].get("combined_score"),
        "search_mase_ratio": winner["metrics"].get("mase_ratio"), "heldout": row,
        "note": "time-series programs are fitted on each history at forecast time; the frozen state is empty",
    })
    totals = Ledger(run_dir, llm.get("prices")).totals()
    candidates = [e for e in result.lineage if e.get("kind") == "candidate"]
    valid = sum(1 for e in candidates if e.get("metrics", {}).get("valid") == 1.0)
    data = {
        "dataset": spec["dataset"], "freq": spec["freq"], "prediction_length": spec["prediction_length"],
        "season": spec["season"], "forecaster": spec["forecaster"]["name"],
        "search": {"llm": llm["backend"], "iterations": iterations, "iterations_done": result.iterations_done,
                   "stop_reason": result.stop_reason, "candidates": len(candidates), "valid": valid,
                   "llm_calls": totals.calls, "llm_cached": totals.cached, "llm_cost_usd": totals.cost_usd,
                   "wall_s": round(time.time() - started, 1), "judge": judge_summary(run_dir)},
        "winner": {"id": winner.get("id"), "iteration": winner.get("iteration"),
                   "fitness": winner["metrics"].get("combined_score"),
                   "mase_ratio": winner["metrics"].get("mase_ratio"), "source": source},
        "heldout": [row],
        "finalists": finalists,
    }
    (run_dir / "report.json").write_text(json.dumps(data, indent=2, default=str))
    d = data
    md = [f"# EFE-Time report: {d['dataset']['name']}", "",
          f"- {d['dataset']['n_series']} series, frequency {d['freq']}, horizon {d['prediction_length']}, season "
          f"{d['season']}; held-out: the last {spec['heldout']['windows']} window(s) of each series, never seen by "
          f"the search.",
          f"- Search forecaster: {d['forecaster']}; LLM: {d['search']['llm']}; {d['search']['iterations_done']} of "
          f"{iterations} iterations ({d['search']['stop_reason']}); {len(candidates)} candidates, {valid} valid; "
          f"LLM calls {totals.calls} (+{totals.cached} cached), ${totals.cost_usd:.4f}.",
          *summary_line(d["search"]["judge"]),
          f"- Winner: `{d['winner']['id']}` (iteration {d['winner']['iteration']}), search fitness "
          f"{d['winner']['fitness']:.4f}, validation MASE ratio {d['winner']['mase_ratio']:.4f}.", "",
          "## Held-out windows", "", render_table([row]), "",
          *_finalists_md(finalists, winner),
          "## Winning program", "", "```python", source.rstrip(), "```", ""]
    from efe.plot import write_plots

    plots = write_plots(run_dir)
    if plots:
        md[md.index("## Winning program"):md.index("## Winning program")] = ["## The search", ""] + [
            (f"[{t}]({r})" if r.endswith(".html") else f"![{t}]({r})") + "\n" for t, r in plots.items()]
    path = run_dir / "report.md"
    path.write_text("\n".join(md))
    return path
