"""EFE-Tab as a ``Setting``: one table, the task's metric (ROC-AUC, macro ROC-AUC or RMSE) of a fixed downstream model, a held-out part of rows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from efe.core.console import say
from efe.core.config import required
from efe.core.resources import evaluator_file, seed_program
from efe.steering.memory import memory_spec, tab_fingerprint, tab_schema
from efe.steering.summary import roles_spec
from efe.rundir.records import SEED, LineageEntry
from efe.setting import Choice
from efe.core.specs import TabSpec, replace
from efe.core.task import metric_name
from efe.tab import report
from efe.tab.context import build_context
from efe.tab.distil import distil_best
from efe.tab.freeze import TabFrozen, freeze_winner
from efe.tab.heldout import scorer_configs
from efe.tab.prepare import prepare_tab_run, search_part
from efe.tab.prompts import TEMPLATE_DIR, system_message
from efe.proposer.tab_roles import applicable_roles
from efe.tab.selection import select_tab
from efe.search.ray_runtime import scoring_evaluator
from evaluators.tabular.evaluator import TabEvaluator

class TabSetting:
    name = "tab"
    evaluator_file = evaluator_file("tab")
    seed_program = seed_program("tab")
    template_dir = TEMPLATE_DIR
    system_message = staticmethod(system_message)
    score_names: dict[str, str] = {}
    after_search = "next: final selection on rows the search never scored, then the freeze"

    def __init__(self, split: tuple | None = None) -> None:
        self.split = split  # (training, held-out) parts given directly, e.g. a benchmark's outer fold

    def prepare(self, cfg: DictConfig, run_dir: Path) -> tuple[TabSpec, dict, dict]:
        spec, train, _ = prepare_tab_run(cfg, run_dir, self.split)
        say("describing the columns for the proposer (on the search rows only) ...")
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
        shutil.copyfile(self.seed_program, run_dir / "seed_program.py")
        return spec, context, steering

    def describe(self, spec: TabSpec, llm: dict, iterations: int) -> tuple[str, str]:
        if llm["backend"] == "offline":
            backend = ("offline proposer (no LLM endpoint configured; set EFE_LLM_API_BASE or use "
                       "llm=openai llm.api_base=... to let a model write the programs)")
        elif llm["backend"] == "replay":
            backend = f"replay of {llm.get('path')}"
        else:
            backend = f"{', '.join(m['name'] for m in llm.get('models', []))} at {llm.get('api_base')}"
        # the console's progress line names the task's gain (called on a resumed run too)
        self.score_names = {"score_label": "rel. RMSE reduction" if spec.task == "regression" else "ΔAUC"}
        return (f"efe.tab: dataset {spec.dataset.name} (target '{spec.target}', {spec.task}: "
                f"{metric_name(spec.task)}), scorer {spec.scorer['name']}, {iterations} iterations"), backend

    def select(self, cfg: DictConfig, spec: TabSpec, run_dir: Path, result: Any, seed_source: str) -> Choice:
        """The program to freeze: re-scored on the selection pool; the identity unless a gain is confirmed."""
        seed_entry = next((e for e in result.lineage if e.kind == SEED), None)
        fallback = result.best or seed_entry or LineageEntry(SEED, id="seed", iteration=0,
                                                             metrics={"combined_score": 0.5, "delta_auc": 0.0})
        sel = required(cfg, "selection")
        top_k = int(sel["top_k"] or 0)
        if top_k <= 0 or result.best is None:
            return Choice(fallback, result.best_code or seed_source,
                          {"verdict": "final selection off (selection.top_k=0)"})
        say(f"final selection: re-scoring the seed and the {top_k} best candidates on the selection pool (rows the search never scored)")
        no_harm = [c for c in scorer_configs(list(sel["no_harm_scorers"] or []), spec.scorer)
                   if c.get("name") != spec.scorer["name"]]
        lineage = list(result.lineage)
        if sel["distil"] and float(sel["lean_first_se"]) > 0:
            lean = self._distil(spec, run_dir, lineage)
            lineage += [lean] if lean is not None else []
        chosen, table, summary = select_tab(
            lineage, run_dir,
            lambda scorer=None: scoring_evaluator(run_dir, TabEvaluator, replace(spec, scorer=scorer) if scorer else spec),
            top_k, sel, spec.seed, no_harm)
        say(f"final selection: {summary['verdict']}")
        if chosen is None:
            return Choice(fallback, result.best_code or seed_source, summary, table)
        return Choice(chosen, chosen.source(run_dir), summary, table)

    @staticmethod
    def _distil(spec: TabSpec, run_dir: Path, lineage: list[LineageEntry]) -> LineageEntry | None:
        """The best program's lean variant scored on the search folds (``efe.tab.distil``); a failure to score it
        costs the run nothing but the variant."""
        evaluator = TabEvaluator(spec)
        try:
            return distil_best(lineage, run_dir, evaluator.evaluate, say)
        except Exception as exc:  # noqa: BLE001 - an optional extra finalist; the search's own stand
            say(f"WARNING: final selection: the lean variant of the search's best could not be scored ({exc}); "
                "the search's finalists are tested as they are")
            return None
        finally:
            evaluator.close()

    def freeze(self, cfg: DictConfig, spec: TabSpec, run_dir: Path, choice: Choice) -> TabFrozen:
        return freeze_winner(cfg, spec, run_dir, choice)

    def report(self, cfg: DictConfig, spec: TabSpec, run_dir: Path, choice: Choice, frozen: TabFrozen, result: Any,
               llm: dict, iterations: int, started: float, memory: dict | None) -> Path:
        return report.write(cfg, spec, run_dir, choice, frozen, result, llm, iterations, started, memory)

    def next_steps(self, run_dir: Path) -> list[str]:
        return [f"  LLM ledger:      {run_dir / 'llm.jsonl'}",
                f"  resume with:     python -m efe.tab resume={run_dir} evolution.iterations=<more>"]
