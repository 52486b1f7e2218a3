"""One EFE-Tab run: load → split → context → spec → search → freeze → report."""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from efe.cli_common import open_run, say
from efe.config import plain_dict, required
from efe.datasets.split import read_train
from efe.freeze import freeze, input_schema
from efe.llm.judge import summarize as judge_summary
from efe.llm.ledger import Ledger
from efe.plot import write_plots
from efe.resources import evaluator_file, seed_program
from efe.sandbox import SandboxLimits
from efe.search.memory import memory_spec, remember_run, tab_fingerprint, tab_schema
from efe.search.oe_config import build_config
from efe.search.runner import run_search
from efe.search.steering import roles_spec, steering_summary
from efe.specs import TabSpec, replace
from efe.tab.context import build_context
from efe.tab.heldout import refit, score_heldout, scorer_configs
from efe.tab.parallel import worker_count
from efe.tab.prepare import prepare_tab_run, search_part
from efe.tab.prompts import TEMPLATE_DIR, system_message
from efe.tab.report import estimates, search_cost, write_report
from efe.tab.roles import applicable_roles
from efe.tab.selection import select_tab
from efe.tracking import track_run
from evaluators.tabular.evaluator import TabEvaluator
from evaluators.tabular.gates import GateLimits

log = logging.getLogger(__name__)
SEED_PROGRAM = seed_program("tab")
EVALUATOR_FILE = evaluator_file("tab")


def run_tab(cfg: DictConfig, run_dir: Path, split: tuple | None = None) -> Path:
    started = time.time()
    iterations = int(cfg.evolution.iterations)

    def prepare() -> tuple[TabSpec, dict, dict]:
        spec, train, _ = prepare_tab_run(cfg, run_dir, split)
        context = build_context(search_part(train, spec), seed=int(cfg.seed))  # not the selection pool
        allowed = required(cfg, "proposer.allowed_moves")
        if allowed:
            context["allowed_moves"] = list(allowed)
        steering = {"roles": roles_spec(required(cfg, "proposer"), "tab", applicable_roles(context)),
                    "memory": memory_spec(required(cfg, "memory"), tab_fingerprint(context, spec.target),
                                          tab_schema(context, spec.target), "tab")}
        recalled = steering["memory"]
        if recalled["programs"]:
            say(f"memory: {len(recalled['programs'])} stored program(s) of {recalled['runs']} earlier "
                f"run(s) on this table go first; {len(recalled['rules'])} stored rule(s) in the prompts")
        (run_dir / "context.json").write_text(json.dumps(context, indent=2))
        shutil.copyfile(SEED_PROGRAM, run_dir / "seed_program.py")
        return spec, context, steering

    spec, context, llm, spec_path, resume = open_run(cfg, run_dir, "efe.tab", prepare)

    _announce(cfg, spec, llm, iterations, run_dir)
    seed_source = (run_dir / "seed_program.py").read_text()
    oe_config = build_config(
        plain_dict(cfg.evolution.openevolve), llm,
        system_message=system_message(spec, context, seed_source), template_dir=str(TEMPLATE_DIR),
        seed=int(cfg.seed), iterations=iterations, output_dir=str(run_dir / "evolution"),
    )
    result = run_search(run_dir, spec_path, run_dir / "seed_program.py", EVALUATOR_FILE, oe_config,
                        iterations, llm, resume=resume)
    say(f"search {result.status} ({result.stop_reason}); refitting the winner on the whole training part")

    winner, source, finalists, selection = _final_selection(cfg, spec, run_dir, result, seed_source)
    memory = remember_run(required(cfg, "memory"), spec, run_dir, result.lineage, result.best, winner)
    best_dir = run_dir / "best"
    best_dir.mkdir(exist_ok=True)
    (best_dir / "program.py").write_text(source)
    (best_dir / "info.json").write_text(json.dumps(winner, indent=2, default=str))

    try:
        report_path = _finish(cfg, spec, run_dir, source, winner, result, llm, iterations, started, finalists,
                              selection, memory)
    except Exception as exc:  # noqa: BLE001 - a failing report must not hide the frozen result
        if not (run_dir / "frozen" / "manifest.json").exists():
            raise
        log.error("writing the report failed", exc_info=True)
        say(f"warning: the report could not be written ({type(exc).__name__}: {exc}); "
            f"the frozen program is complete (details in {run_dir / 'efe.log'})")
        report_path = run_dir / "report.md"
    track_run(cfg, run_dir, "tab")
    say(f"\nDone in {time.time() - started:.0f}s. Run directory: {run_dir}")
    say(f"  report:          {report_path}")
    say(f"  frozen program:  {run_dir / 'frozen'}")
    say(f"  lineage:         {run_dir / 'lineage.jsonl'} ({len(result.lineage)} entries)")
    say(f"  LLM ledger:      {run_dir / 'llm.jsonl'}")
    say(f"  resume with:     python -m efe.tab resume={run_dir} evolution.iterations=<more>")
    return run_dir


def _final_selection(cfg: DictConfig, spec: TabSpec, run_dir: Path, result: Any, seed_source: str
                     ) -> tuple[dict, str, list[dict], dict]:
    """The program to freeze: re-scored on the selection pool; the identity unless a gain is confirmed."""
    seed_entry = next((e for e in result.lineage if e.get("kind") == "seed"), None)
    fallback = result.best or seed_entry or {"id": "seed", "kind": "seed", "iteration": 0,
                                             "metrics": {"combined_score": 0.5, "delta_auc": 0.0},
                                             "new_columns": [], "dropped_columns": []}
    sel = required(cfg, "selection")
    top_k = int(sel["top_k"] or 0)
    if top_k <= 0 or result.best is None:
        return fallback, result.best_code or seed_source, [], {"verdict": "final selection off (selection.top_k=0)"}
    say(f"final selection: re-scoring the seed and the {top_k} best candidates on the selection pool (rows the search never scored)")
    no_harm = [c for c in scorer_configs(list(sel["no_harm_scorers"] or []), spec.scorer)
               if c.get("name") != spec.scorer["name"]]
    chosen, table, summary = select_tab(
        result.lineage, run_dir, lambda scorer=None: TabEvaluator(replace(spec, scorer=scorer) if scorer else spec),
        top_k, sel, spec.seed, no_harm)
    say(f"final selection: {summary['verdict']}")
    if chosen is None:
        return fallback, result.best_code or seed_source, table, summary
    return chosen, (run_dir / "programs" / f"{chosen['code_sha256']}.py").read_text(), table, summary


def _announce(cfg: DictConfig, spec: TabSpec, llm: dict, iterations: int, run_dir: Path) -> None:
    if llm["backend"] == "offline":
        backend = ("offline proposer (no LLM endpoint configured; set EFE_LLM_API_BASE or use "
                   "llm=openai llm.api_base=... to let a model write the programs)")
    elif llm["backend"] == "replay":
        backend = f"replay of {llm.get('path')}"
    else:
        backend = f"{', '.join(m['name'] for m in llm.get('models', []))} at {llm.get('api_base')}"
    say(f"efe.tab: dataset {spec.dataset.name} (target '{spec.target}'), scorer {spec.scorer['name']}, "
        f"{iterations} iterations")
    say(f"LLM: {backend}")
    say(f"run directory: {run_dir}")


def _finish(cfg: DictConfig, spec: TabSpec, run_dir: Path, source: str, winner: dict, result: Any,
            llm: dict, iterations: int, started: float, finalists: list[dict], selection: dict,
            memory: dict | None = None) -> Path:
    X_train, y_train = read_train(spec.train_path, spec.target)
    X_test, y_test = read_train(run_dir / "data" / "heldout.parquet", spec.target)
    models = scorer_configs(list(cfg.report.models), spec.scorer)
    held = refit(source, X_train, y_train, X_test, SandboxLimits.from_mapping(asdict(spec.sandbox)),
                 spec.seed, GateLimits.from_mapping(asdict(spec.gate)))
    fresh_row = next((f for f in finalists if f["id"] == winner.get("id")), None)
    interval_z = float(required(cfg, "report.interval_z"))

    def freeze_winner() -> dict:
        claimed = estimates(winner, fresh_row, held.rows, interval_z, spec.scorer["name"])
        freeze(run_dir / "frozen", "tab", source, held.state, schema=input_schema(X_train),
               output_columns=[str(c) for c in held.test_out.columns],
               extra={"dataset": spec.dataset.name, "target": spec.target,
                      "output_schema": input_schema(held.test_out),  # engine=spark/dask: the output types
                      "positive_label": spec.dataset.positive_label,
                      "search_fitness": winner["metrics"].get("combined_score"),
                      "search_delta_auc": winner["metrics"].get("delta_auc"),
                      "selection": selection.get("verdict"), "estimates": claimed,
                      "heldout_auc": {r["model"]: round(r["auc_efe"], 6) for r in held.rows}, "heldout": held.rows,
                      "new_columns": winner.get("new_columns", []),
                      "dropped_columns": winner.get("dropped_columns", [])})
        return claimed

    freeze_winner()  # the result is safe before any report model runs
    score_heldout(held, X_train, y_train, X_test, y_test, models, spec.seed,
                  worker_count(required(cfg, "selection.workers")))
    claimed = freeze_winner()  # the same files, now with the held-out scores in the manifest

    totals = Ledger(run_dir, llm.get("prices")).totals()
    candidates = [e for e in result.lineage if e.get("kind") == "candidate"]
    valid = sum(1 for e in candidates if e.get("metrics", {}).get("valid") == 1.0)
    data = {
        "dataset": {"name": spec.dataset.name, "target": spec.target,
                    "positive_label": spec.dataset.positive_label, "train_rows": len(X_train),
                    "heldout_rows": len(X_test), "n_features": X_train.shape[1],
                    "heldout_source": _heldout_source(run_dir), "warnings": spec.dataset.warnings},
        "search_scorer": spec.scorer["name"],
        "sandbox_mode": spec.search.sandbox_mode,
        "search": {"llm": llm["backend"], "iterations": iterations, "iterations_done": result.iterations_done,
                   "stop_reason": result.stop_reason, "status": result.status, "candidates": len(candidates),
                   "valid": valid,
                   "invalid": len(candidates) - valid,
                   "no_program": sum(1 for e in result.lineage if e.get("kind") == "no_program"),
                   "llm_calls": totals.calls, "llm_cached": totals.cached, "llm_cost_usd": totals.cost_usd,
                   "wall_s": round(time.time() - started, 1), "judge": judge_summary(run_dir)},
        "winner": {"id": winner.get("id"), "iteration": winner.get("iteration"),
                   "fitness": winner["metrics"].get("combined_score", 0.0),
                   "delta_auc": winner["metrics"].get("delta_auc", 0.0),
                   "delta_auc_se": winner["metrics"].get("delta_auc_se", 0.0),
                   "n_folds": winner["metrics"].get("n_folds", 0.0), "kind": winner.get("kind", "candidate"),
                   "new_columns": winner.get("new_columns", []), "dropped_columns": winner.get("dropped_columns", []),
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
    data["plots"] = write_plots(run_dir)
    md, _ = write_report(run_dir, data)
    return md


def _heldout_source(run_dir: Path) -> str | None:
    path = run_dir / "data" / "heldout.json"
    return json.loads(path.read_text()).get("source") if path.exists() else None
