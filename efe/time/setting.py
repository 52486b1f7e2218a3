"""EFE-Time as a ``Setting``: a set of series, MASE of a fixed forecaster, the last windows held out."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from efe.core.console import say
from efe.core.config import required
from efe.core.resources import evaluator_file, seed_program
from efe.steering.memory import fingerprint, memory_spec, time_schema
from efe.steering.summary import roles_spec
from efe.rundir.records import SEED, LineageEntry
from efe.setting import Choice
from efe.core.specs import TimeSpec
from efe.time import report
from efe.time.freeze import freeze_winner
from efe.time.prepare import prepare_time_run
from efe.time.prompts import TEMPLATE_DIR, system_message
from efe.proposer.time_roles import applicable_roles
from efe.time.selection import select_time
from efe.search.ray_runtime import scoring_evaluator
from evaluators.timeseries.evaluator import TimeEvaluator


class TimeSetting:
    name = "time"
    evaluator_file = evaluator_file("time")
    seed_program = seed_program("time")
    template_dir = TEMPLATE_DIR
    system_message = staticmethod(system_message)
    score_names = {"score_label": "MASE ratio", "score_key": "mase_ratio"}
    after_search = "scoring the winner on the held-out windows"

    def prepare(self, cfg: DictConfig, run_dir: Path) -> tuple[TimeSpec, dict, dict]:
        """The search spec's proposer roles and memory (fingerprint: dataset name, frequency, horizon, season)."""
        spec, context = prepare_time_run(cfg, run_dir)
        shape = {"freq": spec.freq, "prediction_length": spec.prediction_length, "season": spec.season}
        key = fingerprint("time", shape | {"dataset": spec.dataset.name})
        return spec, context, {"roles": roles_spec(required(cfg, "proposer"), "time", applicable_roles(context)),
                               "memory": memory_spec(required(cfg, "memory"), key, time_schema(shape), "time")}

    def describe(self, spec: TimeSpec, llm: dict, iterations: int) -> tuple[str, str]:
        backend = ("offline proposer (no LLM endpoint configured; set EFE_LLM_API_BASE or use llm=openai "
                   "llm.api_base=... to let a model write the programs)" if llm["backend"] == "offline"
                   else llm["backend"])
        return (f"efe.time: dataset {spec.dataset.name} ({spec.dataset.n_series} series, horizon "
                f"{spec.prediction_length}, season {spec.season}), forecaster {spec.forecaster['name']}, "
                f"{iterations} iterations"), backend

    def select(self, cfg: DictConfig, spec: TimeSpec, run_dir: Path, result: Any, seed_source: str) -> Choice:
        """Seed and finalists scored on selection windows the search never saw; the identity unless a gain holds."""
        identity = LineageEntry(SEED, id="seed", iteration=0, metrics={"combined_score": 0.5, "mase_ratio": 1.0})
        winner = result.best or identity
        source = result.best_code or seed_source
        selection: dict = {"decision": "skipped", "windows": spec.selection.windows, "table": [],
                           "interval_z": spec.selection.interval_z}
        if result.best is not None and spec.selection.windows:
            say(f"final selection: scoring the seed and the {spec.selection.top_k} best candidates on "
                f"{spec.selection.windows} selection window(s) the search never saw")
            picked = select_time(result.lineage, run_dir, spec,
                                 lambda s: scoring_evaluator(run_dir, TimeEvaluator, s))  # on the executor
            selection.update(decision=picked.decision, table=picked.table, best=picked.best, claimed=picked.claimed,
                             rejected_for_series=picked.rejected_for_series, unconfirmed=picked.unconfirmed,
                             claim_windows=spec.selection.claim_windows,
                             max_series_loss=spec.selection.max_series_loss, evidence=picked.evidence,
                             series_loss_z=spec.series_loss.z, se_origins=spec.series_loss.se_origins)
            if picked.chosen is not None:
                winner = picked.chosen
                source = picked.chosen.source(run_dir)
            elif picked.decision == "not enough evidence":  # no seed entry in the lineage: the seed program
                winner, source = identity, seed_source
            say(f"final selection: {picked.decision}")
        selection["frozen_id"] = winner.id
        return Choice(winner, source, selection)

    def freeze(self, cfg: DictConfig, spec: TimeSpec, run_dir: Path, choice: Choice) -> Path:
        return freeze_winner(spec, run_dir, choice)

    def report(self, cfg: DictConfig, spec: TimeSpec, run_dir: Path, choice: Choice, frozen: Any, result: Any,
               llm: dict, iterations: int, started: float, memory: dict | None) -> Path:
        return report.write(cfg, spec, run_dir, choice, result, llm, iterations, started, memory)

    def next_steps(self, run_dir: Path) -> list[str]:
        return [f"  transfer with:   python -m efe.transfer run={run_dir} forecasters=[seasonal_naive,ets,theta]"]
