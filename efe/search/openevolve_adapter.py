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
- a deterministic search (``evolution.deterministic=true``, ``deterministic_search``) runs one
  evaluation at a time in submission order (``process_parallel.ProcessPoolExecutor`` is replaced by a
  one-worker pool), gives programs ids derived from the seed (``uuid`` in ``controller`` and
  ``database``; a worker's child id is rewritten from its iteration), and keeps the database's island
  and archive id sets in insertion order (their iteration order otherwise follows string hashing, which
  differs between processes, and openevolve samples parents and inspirations from lists of them);
- ``process_parallel.ProcessPoolExecutor`` is replaced by ``WorkerPool`` for every search: openevolve
  installs its SIGINT/SIGTERM handler before it forks its workers, and a worker that inherited it logs
  from inside the handler when the pool is terminated (a logging error and traceback on the console
  when the signal lands mid-log); a worker ignores both signals and leaves stopping to the search;
- the checkpoint layout ``checkpoints/checkpoint_<N>/metadata.json`` (with ``last_iteration`` and
  ``island_feature_maps``) is read for resuming and for the MAP-Elites grid plot.

The LLM layer (``efe.llm``) and the evaluators may not import the search, so the two public
classes they build on stay with them: ``openevolve.llm.base.LLMInterface`` (and
``openevolve.llm.openai.OpenAILLM``) in ``efe.llm``, ``openevolve.evaluation_result.EvaluationResult``
in ``evaluators.service``; the test pins those too.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import functools
import hashlib
import logging
import os
import random
import re
import signal
import threading
import uuid
from collections.abc import MutableSet
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import openevolve.controller
import openevolve.database
import openevolve.process_parallel

import openevolve
from openevolve.config import Config
from openevolve.controller import OpenEvolve
from openevolve.population import PopulationStrategy, ProgramState

from efe.rundir.proposals import duplicate_sha, rejected_sha

__all__ = ["Config", "ProgramState", "OPENEVOLVE_VERSION", "PROCESS_LOGGER", "IterationErrors",
           "config_from_dict", "latest_checkpoint", "checkpoint_iteration",
           "island_feature_maps", "make_controller", "run_controller", "request_stop", "last_iteration",
           "save_checkpoint", "track_iterations", "parse_iteration_error", "installed_version", "RunLogs",
           "is_rejection", "deterministic_search", "OrderedIdSet", "child_id"]

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


def run_controller(controller: OpenEvolve, iterations: int, checkpoint: Path | None, *,
                   deterministic: bool = False, start_iteration: int = 0) -> None:
    """``iterations`` more iterations, from ``checkpoint`` when resuming; ``deterministic``: see
    ``deterministic_search``."""
    scope = deterministic_search(controller, start_iteration) if deterministic else worker_pool()
    with scope:
        asyncio.run(controller.run(iterations=iterations, checkpoint_path=str(checkpoint) if checkpoint else None))


# ------------------------------------------------------------------ deterministic search
class OrderedIdSet(MutableSet):
    """A set that iterates in insertion order (a dict's keys), for the database's island and archive ids."""

    __hash__ = None  # type: ignore[assignment] - mutable, like set

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self._items = dict.fromkeys(items)

    def __contains__(self, item: object) -> bool:
        return item in self._items

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"OrderedIdSet({list(self._items)!r})"

    def add(self, item: Any) -> None:
        self._items[item] = None

    def discard(self, item: Any) -> None:
        self._items.pop(item, None)

    def copy(self) -> "OrderedIdSet":
        return OrderedIdSet(self._items)

    def update(self, *others: Iterable[Any]) -> None:
        for other in others:
            for item in other:
                self.add(item)

    def intersection_update(self, *others: Iterable[Any]) -> None:
        keep = [item for item in self._items if all(item in other for other in others)]
        self._items = dict.fromkeys(keep)

    def difference_update(self, *others: Iterable[Any]) -> None:
        for other in others:
            for item in other:
                self.discard(item)


def _order_id_sets(database: Any) -> None:
    database.islands = [island if isinstance(island, OrderedIdSet) else OrderedIdSet(island)
                        for island in database.islands]
    if not isinstance(database.archive, OrderedIdSet):
        database.archive = OrderedIdSet(database.archive)


class _SeededUuid:
    """Stands in for the ``uuid`` module in openevolve's controller and database: ``uuid4`` from a seeded stream."""

    def __init__(self, seed: str) -> None:
        self._random = random.Random(seed)

    def uuid4(self) -> uuid.UUID:
        return uuid.UUID(int=self._random.getrandbits(128), version=4)

    def __getattr__(self, name: str) -> Any:
        return getattr(uuid, name)


def child_id(seed: Any, iteration: int) -> str:
    """The id of the program an iteration produced, in a deterministic search."""
    digest = hashlib.sha256(f"efe-child|{seed}|{iteration}".encode()).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def _with_child_id(result: Any, seed: Any) -> Any:
    child = getattr(result, "child_program_dict", None)
    if child:
        child["id"] = child_id(seed, result.iteration)
    return result


class _Turn(Future):
    """A task of ``SerialPool``: handed to the worker only once the task before it was taken (``result``)
    and the search has come back for more (the next ``done`` or ``submit``), so the worker never
    proposes while the search is still recording the previous iteration."""

    def __init__(self, pool: "SerialPool") -> None:
        super().__init__()
        self.pool = pool
        self.taken = False

    def done(self) -> bool:
        self.pool.pump()
        return super().done()

    def result(self, timeout: float | None = None) -> Any:
        try:
            return super().result(timeout)
        finally:
            self.taken = True


def _worker_start(initializer: Callable[..., None] | None, *args: Any) -> None:
    """First thing in a pool worker: SIGINT and SIGTERM are ignored instead of running openevolve's
    inherited handler (it logs from inside the signal). The search stops its own pool: it terminates
    the workers and kills those still alive a second later, so a call in flight (an LLM request the
    endpoint may bill) still reaches the ledger when it ends within that second, as it did before;
    Ctrl-C reaches the whole process group, and only the search acts on it."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if initializer is not None:
        initializer(*args)


class WorkerPool(ProcessPoolExecutor):
    """openevolve's process pool, with workers that run no handler on SIGINT or SIGTERM (``_worker_start``)."""

    def __init__(self, *args: Any, initializer: Callable[..., None] | None = None, initargs: tuple = (),
                 **kwargs: Any) -> None:
        super().__init__(*args, initializer=functools.partial(_worker_start, initializer),
                         initargs=tuple(initargs), **kwargs)


@contextlib.contextmanager
def worker_pool(pool: type[WorkerPool] = WorkerPool) -> Iterator[None]:
    """openevolve's search runs its workers in ``pool`` (a ``WorkerPool``) while the context is open."""
    saved = openevolve.process_parallel.ProcessPoolExecutor
    openevolve.process_parallel.ProcessPoolExecutor = pool
    try:
        yield
    finally:
        openevolve.process_parallel.ProcessPoolExecutor = saved


class SerialPool(WorkerPool):
    """One worker and one task at a time, in the order the tasks were submitted; a finished child gets
    its id from the seed and its iteration (``seed`` is set by ``deterministic_search``)."""

    seed: Any = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["max_workers"] = 1
        super().__init__(*args, **kwargs)
        self._waiting: collections.deque = collections.deque()
        self._current: _Turn | None = None
        self._pump_lock = threading.Lock()

    def submit(self, fn: Callable, /, *args: Any, **kwargs: Any) -> Future:
        turn = _Turn(self)
        self._waiting.append((turn, fn, args, kwargs))
        self.pump()
        return turn

    def pump(self) -> None:
        """Hand the next waiting task to the worker once the current one was taken."""
        with self._pump_lock:
            current = self._current
            if current is not None and not (current.taken or current.cancelled()):
                return
            self._current = None
            while self._waiting:
                turn, fn, args, kwargs = self._waiting.popleft()
                if not turn.set_running_or_notify_cancel():
                    continue  # cancelled while waiting
                inner = super().submit(fn, *args, **kwargs)
                inner.add_done_callback(lambda done, turn=turn: self._relay(done, turn))
                self._current = turn
                return

    def _relay(self, done: Future, turn: _Turn) -> None:
        if done.cancelled():
            turn.set_exception(RuntimeError("evaluation cancelled"))
        elif done.exception() is not None:
            turn.set_exception(done.exception())
        else:
            turn.set_result(_with_child_id(done.result(), self.seed))


@contextlib.contextmanager
def deterministic_search(controller: OpenEvolve, start_iteration: int = 0) -> Iterator[None]:
    """While the search runs: the same seed gives the same candidates in the same order.

    One evaluation at a time (``SerialPool``: submission order is completion order, every snapshot a
    worker is sent was taken at the same point of the search, and a proposal reads the lineage only
    once the previous iteration is recorded), program ids from the seed,
    the global ``random`` (openevolve's sampling) reseeded, and id sets that iterate in insertion order.
    """
    seed = controller.config.random_seed
    modules = (openevolve.controller, openevolve.database)
    saved = [(m, m.uuid) for m in modules]
    database = controller.database
    original_load = database.load

    def load(*args: Any, **kwargs: Any) -> Any:
        out = original_load(*args, **kwargs)
        _order_id_sets(database)
        return out

    ids = _SeededUuid(f"efe-ids|{seed}|{start_iteration}")
    random.seed(f"efe-search|{seed}|{start_iteration}")
    _order_id_sets(database)
    database.load = load
    for module, _ in saved:
        module.uuid = ids
    try:
        with worker_pool(type("SeededSerialPool", (SerialPool,), {"seed": seed})):
            yield
    finally:
        for module, original in saved:
            module.uuid = original
        database.load = original_load


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
