"""The one module that knows openevolve's internals (version 0.4.0, pinned in pyproject.toml).

efe drives openevolve through its public surface (``Config``, ``OpenEvolve.run``, the
``PopulationStrategy`` hooks, ``init_client``, ``EvaluationResult``) plus a few internals that
have no public equivalent. They are all here, and ``tests/test_openevolve_adapter.py`` pins each
of them, so a version bump fails loudly in one place:

- ``_setup_logging`` is overridden: openevolve's own adds a console handler to the root logger
  (and a file per start); efe keeps one ``openevolve.log`` in the run directory instead, so the
  console shows efe's progress line. openevolve's records reach efe's own handlers (efe.log, the
  console) through one forwarding handler, except that a rejected proposal (a duplicate, a judge's
  verdict: openevolve logs it as ``LLM generation failed`` and ``Iteration N error``) stays in the
  log files: it is a verdict recorded in the lineage and counted by the progress line, not an error;
- ``_save_checkpoint`` is called once more after the search stops (a resume point even after Ctrl-C
  or a budget stop, which openevolve does not checkpoint);
- ``database.add`` is wrapped to learn the iteration a candidate belongs to (the admission hook
  sees the program, not the iteration);
- the warning ``Iteration N error: ...`` of ``openevolve.process_parallel`` is the only trace of an
  iteration that produced no program (an LLM failure, a rejected proposal);
- the checkpoint layout ``checkpoints/checkpoint_<N>/metadata.json`` (with ``last_iteration`` and
  ``island_feature_maps``) is read for resuming and for the MAP-Elites grid plot.

The LLM layer (``efe.llm``) and the evaluators may not import the search, so the two public
classes they build on stay with them: ``openevolve.llm.base.LLMInterface`` (and
``openevolve.llm.openai.OpenAILLM``) in ``efe.llm``, ``openevolve.evaluation_result.EvaluationResult``
in ``evaluators.service``; the test pins those too.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from pathlib import Path
from typing import Any, Callable

import openevolve
from openevolve.config import Config
from openevolve.controller import OpenEvolve
from openevolve.population import PopulationStrategy, ProgramState

from efe.rundir.proposals import duplicate_sha, rejected_sha

__all__ = ["Config", "ProgramState", "OPENEVOLVE_VERSION", "PROCESS_LOGGER", "IterationErrors",
           "config_from_dict", "latest_checkpoint", "checkpoint_iteration",
           "island_feature_maps", "make_controller", "run_controller", "request_stop", "last_iteration",
           "save_checkpoint", "track_iterations", "parse_iteration_error", "installed_version", "RunLogs",
           "is_rejection"]

OPENEVOLVE_VERSION = "0.4.0"  # the version every internal below was read from
PROCESS_LOGGER = "openevolve.process_parallel"  # logs "Iteration N error: ..." for iterations without a program
LOG_FILE = "openevolve.log"
# process_parallel: f"Iteration {completed_iteration} error: {result.error}{token_str}",
# token_str = f" | tokens: {tt} (prompt: {pt}, completion: {ct})" when the LLM reported usage
# "rejected" is how ``efe.llm.proposal.RejectionLog`` rewrites a judge or novelty rejection's line
_ITERATION_ERROR = re.compile(r"Iteration (\d+) (?:error|rejected): (.*?)(?: \| tokens:.*)?$", re.S)
_CHECKPOINT = re.compile(r"checkpoint_(\d+)")


# ------------------------------------------------------------------ config
def config_from_dict(d: dict[str, Any]) -> Config:
    """openevolve's Config from a plain dict (its own ``from_dict``, which also builds the nested sections)."""
    return Config.from_dict(d)


# ------------------------------------------------------------------ controller
def is_rejection(message: str) -> bool:
    """A proposal turned down before evaluation (duplicate, judge): a verdict, not an error."""
    return bool(duplicate_sha(message) or rejected_sha(message))


class RunLogs(logging.Handler):
    """Passes openevolve's records on to the root logger's handlers (efe.log, the console), keeping
    rejected proposals off every handler that is not a file."""

    def emit(self, record: logging.LogRecord) -> None:  # logging.Handler
        quiet = is_rejection(record.getMessage())
        for handler in logging.getLogger().handlers:
            if quiet and not isinstance(handler, logging.FileHandler):
                continue
            if record.levelno >= handler.level:
                handler.handle(record)


class FileLoggingOpenEvolve(OpenEvolve):
    """openevolve with its log in the run directory only: the console shows efe's progress line."""

    def _setup_logging(self) -> None:  # overrides openevolve's (root-logger console + file handlers)
        log_dir = self.config.log_dir or os.path.join(self.output_dir, "logs")
        os.makedirs(log_dir, exist_ok=True)
        logger = logging.getLogger("openevolve")
        for old in [h for h in logger.handlers if getattr(h, "efe_run_log", False)]:
            logger.removeHandler(old)  # an earlier run in this process: its files are not this run's
            old.close()
        handler = logging.FileHandler(os.path.join(log_dir, LOG_FILE))
        handler.setFormatter(logging.Formatter("%(asctime)s - %(name)s - %(levelname)s - %(message)s"))
        handler.setLevel(getattr(logging, self.config.log_level))
        forward = RunLogs()
        for h in (handler, forward):
            h.efe_run_log = True
            logger.addHandler(h)
        logger.propagate = False  # the forwarding handler decides what reaches the root's handlers
        logger.setLevel(getattr(logging, self.config.log_level))


def make_controller(seed_program: str | Path, evaluator_file: str | Path, config: Config, output_dir: str | Path,
                    admit: Callable[[ProgramState, int], bool]) -> OpenEvolve:
    """The controller, with ``admit(candidate, island)`` as its population admission hook (which must
    return True to keep openevolve's own selection)."""
    strategy = PopulationStrategy(admit=lambda snapshot, candidate, island: admit(candidate, island))
    return FileLoggingOpenEvolve(str(seed_program), str(evaluator_file), config, output_dir=str(output_dir),
                                 population_strategy=strategy)


def run_controller(controller: OpenEvolve, iterations: int, checkpoint: Path | None) -> None:
    """``iterations`` more iterations, from ``checkpoint`` when resuming."""
    asyncio.run(controller.run(iterations=iterations, checkpoint_path=str(checkpoint) if checkpoint else None))


def request_stop(controller: OpenEvolve) -> None:
    """Ask a running search to stop after the iterations in flight (no-op before it starts)."""
    parallel = getattr(controller, "parallel_controller", None)
    if parallel is not None:
        parallel.request_shutdown()


def last_iteration(controller: OpenEvolve) -> int:
    """The last iteration whose program reached the database."""
    return int(controller.database.last_iteration)


def save_checkpoint(controller: OpenEvolve) -> None:
    """A checkpoint at the database's last iteration (private ``_save_checkpoint``: no public way)."""
    controller._save_checkpoint(controller.database.last_iteration)


def track_iterations(controller: OpenEvolve, on_iteration: Callable[[int], None]) -> None:
    """Call ``on_iteration(i)`` before every program enters the database, with the iteration it belongs to.

    ``database.add(program, iteration=None, target_island=None)``: the parallel controller passes the
    iteration of a finished child; the seed and migrants come without one (a migrant arrives during
    the current iteration, so it keeps it; the seed carries ``iteration_found``).
    """
    database = controller.database
    original_add = database.add

    def add(program, iteration=None, target_island=None):
        if iteration is not None:
            on_iteration(iteration)
        elif not program.metadata.get("migrant"):
            on_iteration(program.iteration_found)
        return original_add(program, iteration=iteration, target_island=target_island)

    database.add = add


# ------------------------------------------------------------------ iterations without a program
def parse_iteration_error(message: str) -> tuple[int, str] | None:
    """(iteration, reason) from openevolve's ``Iteration N error: ...`` warning, or None for other lines."""
    match = _ITERATION_ERROR.match(message)
    if not match:
        return None
    return int(match.group(1)), match.group(2).strip()


class IterationErrors(logging.Handler):
    """Calls ``on_error(iteration, reason)`` for every iteration openevolve reports as failed."""

    def __init__(self, on_error: Callable[[int, str], None]) -> None:
        super().__init__(level=logging.INFO)  # a rejection's line is rewritten to INFO (RejectionLog)
        self.on_error = on_error

    def attach(self) -> None:
        logging.getLogger(PROCESS_LOGGER).addHandler(self)

    def detach(self) -> None:
        logging.getLogger(PROCESS_LOGGER).removeHandler(self)

    def emit(self, record: logging.LogRecord) -> None:  # logging.Handler
        parsed = parse_iteration_error(record.getMessage())
        if parsed:
            self.on_error(*parsed)


# ------------------------------------------------------------------ checkpoints
def latest_checkpoint(evolution_dir: str | Path) -> Path | None:
    """The newest complete checkpoint (``checkpoints/checkpoint_<N>`` with its ``metadata.json``), or None."""
    root = Path(evolution_dir) / "checkpoints"
    if not root.exists():
        return None
    found = []
    for p in root.iterdir():
        m = _CHECKPOINT.fullmatch(p.name)
        if m and (p / "metadata.json").exists():
            found.append((int(m.group(1)), p))
    return max(found)[1] if found else None


def checkpoint_iteration(checkpoint: Path) -> int:
    """The iteration a checkpoint directory was written at (its name's number)."""
    return int(checkpoint.name.split("_")[1])


def island_feature_maps(metadata: dict) -> list[dict[str, str]]:
    """From a checkpoint's ``metadata.json``: per island, a map from a cell key (bin indices joined
    by "-", in ``database.feature_dimensions`` order) to the id of the program holding the cell."""
    return [m for m in metadata.get("island_feature_maps") or [] if isinstance(m, dict)]


def installed_version() -> str:
    return str(openevolve.__version__)
