"""Run openevolve for a prepared run directory: lineage, progress, budgets, Ctrl-C, resume.

The evaluators and LLM clients find their settings through the run spec (``EFE_RUN_SPEC``),
which openevolve hands to its worker processes with the rest of the environment.
"""

from __future__ import annotations

import json
import logging
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from efe.llm.ledger import Ledger
from efe.llm.novelty import clear_claims
from efe.llm.proposal import RejectionLog
from efe.core.runspec import SPEC_ENV
from efe.core.specs import load_spec
from efe.search import openevolve_adapter as oe
from efe.rundir.records import LineageEntry, best_valid, read_lineage
from efe.search.lineage import LineageRecorder, rewind_lineage
from efe.search.progress import Progress
from efe.search.status import STATUS_FILE, search_status

log = logging.getLogger(__name__)


@dataclass
class SearchResult:
    best: LineageEntry | None  # lineage entry of the best valid program
    best_code: str | None
    stop_reason: str
    iterations_done: int
    lineage: list[LineageEntry]

    @property
    def status(self) -> str:
        """finished, stopped by budget, stopped by LLM failures, or interrupted."""
        return search_status(self.stop_reason)


def run_search(run_dir: Path, spec_path: Path, seed_program: Path, evaluator_file: Path, config: Any,
               total_iterations: int, llm: dict, *, resume: bool = False, score_label: str = "ΔAUC",
               score_key: str = "delta_auc", deterministic: bool = False,
               on_entry: Callable[[LineageEntry], None] | None = None, signals: dict | None = None) -> SearchResult:
    """``on_entry`` also sees every lineage entry as it is written (live experiment tracking). ``signals``: the
    run's deferred-signal record (``efe.run.stops_deferred``); a signal it holds ends the search as interrupted."""
    signals = signals if signals is not None else {"signal": None}
    os.environ[SPEC_ENV] = str(spec_path)
    evolution_dir = run_dir / "evolution"
    checkpoint = oe.latest_checkpoint(evolution_dir) if resume else None
    start_iteration = 0
    if checkpoint is not None:
        start_iteration = oe.checkpoint_iteration(checkpoint)
    remaining = max(total_iterations - start_iteration, 0)
    if resume:
        _rewind(run_dir / "lineage.jsonl", start_iteration if checkpoint is not None else None)
    clear_claims(run_dir)  # nothing is in flight yet; a proposal lost to a kill may be made again

    ledger = Ledger(run_dir, llm.get("prices"), llm.get("max_calls"), llm.get("max_cost_usd"))
    progress = Progress(total_iterations, ledger, score_label=score_label, score_key=score_key,
                        start_iteration=start_iteration,
                        score_format="+.4f" if score_key.startswith("delta") else ".4f",
                        max_llm_failures=llm.get("max_consecutive_failures"),
                        max_infra_failures=_executor(spec_path).get("max_consecutive_failures"))

    def seen(entry: LineageEntry) -> None:
        if signals["signal"]:  # arrived before openevolve's handlers were in place (e.g. scoring the seed)
            oe.request_stop(controller)
        progress.on_entry(entry)
        if on_entry is not None:
            on_entry(entry)

    recorder = LineageRecorder(run_dir / "lineage.jsonl", run_dir / "outcomes", on_entry=seen)

    controller = oe.make_controller(seed_program, evaluator_file, config, evolution_dir, recorder.admit)
    oe.track_iterations(controller, recorder.set_iteration)
    errors = oe.IterationErrors(recorder.no_program)
    errors.attach()
    RejectionLog.install()  # the parent's "Iteration N error" line for a rejection (workers install their own)

    def stop(reason: str) -> None:
        oe.request_stop(controller)

    progress.start(stop)
    # openevolve installs its own SIGINT and SIGTERM handlers and leaves them when it returns (pointing at a
    # controller it has dropped): both are put back afterwards, so that a signal after the search is ours
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    stop_reason = "completed"
    signals["on_signal"] = lambda: oe.request_stop(controller)
    try:
        if remaining > 0 and not signals["signal"]:
            oe.run_controller(controller, remaining, checkpoint, deterministic=deterministic,
                              start_iteration=start_iteration)  # inside the run's executor_runtime
        parallel_stopped = progress.stop_reason
        if signals["signal"]:
            stop_reason = "interrupted"
        elif parallel_stopped:
            stop_reason = parallel_stopped
        elif _iterations_reached(controller, run_dir / "lineage.jsonl") < total_iterations - 1 and remaining > 0:
            stop_reason = "interrupted"
        elif remaining > 0:  # every call failed (or every evaluation was lost), too few to trip a breaker:
            stop_reason = ledger.all_failed() or progress.all_lost() or stop_reason  # not a finished search either
    except KeyboardInterrupt:
        stop_reason = "interrupted"
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        signals["on_signal"], signals["phase"] = None, "after the search"
        progress.close()
        errors.detach()
        try:
            oe.save_checkpoint(controller)  # resume point
        except Exception as exc:  # noqa: BLE001 - the results must still be frozen
            log.warning("final checkpoint failed: %s", exc)

    status = search_status(stop_reason)
    (run_dir / STATUS_FILE).write_text(json.dumps({"status": status, "stop_reason": stop_reason}))
    if status != "finished":
        log.info("search %s: %s", status, stop_reason)  # the run's own line on the console says it once
    lineage = read_lineage(run_dir / "lineage.jsonl")
    best = best_valid(lineage)
    best_code = None
    if best is not None:
        best_code = best.source(run_dir)
    return SearchResult(best, best_code, stop_reason, oe.last_iteration(controller), lineage)


def mark_interrupted(run_dir: Path, result: SearchResult) -> None:
    """A stop asked for after the search (SIGINT or SIGTERM during final selection): the run ends as
    interrupted (exit status 130) once its program is frozen and reported."""
    result.stop_reason = "interrupted"
    (run_dir / STATUS_FILE).write_text(json.dumps({"status": search_status("interrupted"),
                                                   "stop_reason": "interrupted"}))


def _executor(spec_path: Path) -> dict:
    search = load_spec(spec_path).search
    return dict(search.executor) if search is not None else {}


def _iterations_reached(controller: Any, lineage_path: Path) -> int:
    """The last iteration that ran: the database's, or a later one that ended without a program
    (an LLM error or a rewrite identical to its parent leaves a lineage entry, not a program)."""
    seen = [e.iteration or 0 for e in read_lineage(lineage_path)]
    return max([oe.last_iteration(controller), *seen])


def _rewind(lineage_path: Path, through_iteration: int | None) -> None:
    orphaned, torn = rewind_lineage(lineage_path, through_iteration)
    if torn:
        log.warning("lineage.jsonl ended in a torn line (the last run was killed mid-write); dropped it")
    if orphaned:
        log.warning("resuming from iteration %s: %d lineage entries written after that checkpoint moved to "
                    "lineage.orphaned.jsonl", through_iteration, orphaned)
