"""One EFE run, the same steps for every setting: load → split → context → spec → search → select → freeze → report."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from omegaconf import DictConfig

from efe.cli.common import open_run
from efe.core.console import say
from efe.core.errors import EfeError
from efe.core.config import plain_dict, required
from efe.steering.memory import remember_run
from efe.search.oe_config import build_config
from efe.search.ray_runtime import executor_runtime
from efe.search.runner import mark_interrupted, run_search
from efe.setting import Choice, Setting
from efe.report.tracking import Tracker, start_tracking

log = logging.getLogger("efe.run")


def run(setting: Setting, cfg: DictConfig, run_dir: Path) -> Path:
    """A new run, or a resumed one (``resume=<run dir>``); the setting supplies every step's specifics."""
    started = time.time()
    iterations = int(cfg.evolution.iterations)
    # load → split → context → spec (a resumed run reads them back from run_dir)
    spec, context, llm, spec_path, resume = open_run(cfg, run_dir, f"efe.{setting.name}",
                                                     lambda: setting.prepare(cfg, run_dir))
    headline, backend = setting.describe(spec, llm, iterations)
    say(headline)
    say(f"LLM: {backend}")
    say(f"run directory: {run_dir}")
    seed_source = (run_dir / "seed_program.py").read_text()
    tracker = start_tracking(cfg, run_dir, setting.name)  # opened now, logged live; off or unavailable: no-op
    try:
        return _run(setting, cfg, run_dir, spec, context, llm, spec_path, resume, seed_source, iterations, started,
                    tracker)
    except BaseException as exc:
        tracker.fail(exc)
        raise


def _run(setting: Setting, cfg: DictConfig, run_dir: Path, spec: Any, context: Any, llm: dict, spec_path: Path,
         resume: bool, seed_source: str, iterations: int, started: float, tracker: Tracker) -> Path:
    deterministic = bool(spec.search.executor.get("deterministic"))
    # search
    oe_config = build_config(plain_dict(cfg.evolution.openevolve), llm,
                             system_message=setting.system_message(spec, context, seed_source),
                             template_dir=str(setting.template_dir), seed=int(cfg.seed), iterations=iterations,
                             output_dir=str(run_dir / "evolution"), deterministic=deterministic)
    if not resume:
        say("search: scoring the seed program (the identity) first; a line per iteration follows")
    with executor_runtime(spec_path, oe_config), stops_deferred(f"efe.{setting.name}") as stop:
        # a signal from here on is ours whenever openevolve's own handlers are not installed: during the search
        # it stops the search; in the gap after it, and during selection, freezing and the report, it is kept
        result = run_search(run_dir, spec_path, run_dir / "seed_program.py", setting.evaluator_file, oe_config,
                            iterations, llm, resume=resume, deterministic=deterministic, on_entry=tracker.on_entry,
                            signals=stop, **setting.score_names)
        say(f"search {result.status} ({result.stop_reason}); {setting.after_search}")
        # select
        choice = setting.select(cfg, spec, run_dir, result, seed_source)
        memory = remember_run(required(cfg, "memory"), spec, run_dir, result.lineage, result.best,
                              choice.winner)
        _write_best(run_dir, choice)
        # freeze
        frozen = setting.freeze(cfg, spec, run_dir, choice)
        if stop["signal"]:
            mark_interrupted(run_dir, result)
        # report (the frozen program is complete whatever happens here)
        report = _report(setting, cfg, spec, run_dir, choice, frozen, result, llm, iterations, started, memory)
    if stop["signal"] and result.stop_reason != "interrupted":  # asked for while the report was written
        mark_interrupted(run_dir, result)
    tracker.finish(run_dir, result.status)
    ended = "Done" if result.status == "finished" else f"Stopped ({result.status})"  # never "Done" over a cut search
    say(f"\n{ended} in {time.time() - started:.0f}s. Run directory: {run_dir}")
    say(f"  report:          {report}")
    say(f"  frozen program:  {run_dir / 'frozen'}")
    say(f"  lineage:         {run_dir / 'lineage.jsonl'} ({len(result.lineage)} entries)")
    for line in setting.next_steps(run_dir):
        say(line)
    return run_dir


@contextmanager
def stops_deferred(label: str) -> Iterator[dict]:
    """SIGINT and SIGTERM wherever openevolve's own handlers are not installed: during the search they stop it
    (``stop["on_signal"]``, set by the search); after it the run finishes its selection, freezes and reports,
    then ends as interrupted (as a stop during the search does). The same signal a second time aborts at once."""
    stop: dict = {"signal": None, "phase": "during the search", "on_signal": None}
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield stop
        return

    def handler(signum: int, frame: object) -> None:
        if stop["signal"]:
            raise KeyboardInterrupt
        stop["signal"] = signal.Signals(signum).name
        say(f"{label}: {stop['signal']} received {stop['phase']}: finishing the final selection, freezing and "
            "reporting first (send it again to abort without a frozen program)")
        if stop["on_signal"] is not None:
            stop["on_signal"]()

    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _report(setting: Setting, cfg: DictConfig, spec: Any, run_dir: Path, choice: Choice, frozen: Any, result: Any,
            llm: dict, iterations: int, started: float, memory: dict | None) -> Path:
    try:
        return setting.report(cfg, spec, run_dir, choice, frozen, result, llm, iterations, started, memory)
    except EfeError:
        raise  # the user's problem (e.g. a model that cannot be loaded): one line, exit 2
    except Exception as exc:  # noqa: BLE001 - a failing report must not hide the frozen result
        log.error("writing the report failed", exc_info=True)
        say(f"warning: the report could not be written ({type(exc).__name__}: {exc}); "
            f"the frozen program is complete (details in {run_dir / 'efe.log'})")
        return run_dir / "report.md"


def _write_best(run_dir: Path, choice: Choice) -> None:
    best_dir = run_dir / "best"
    best_dir.mkdir(exist_ok=True)
    (best_dir / "program.py").write_text(choice.source)
    (best_dir / "info.json").write_text(json.dumps(choice.winner.to_dict(), indent=2, default=str))
