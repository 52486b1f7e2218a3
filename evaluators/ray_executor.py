"""Candidate evaluations as Ray tasks (``evolution.executor=ray``).

openevolve still runs its worker processes (prompt, LLM, evaluator entry point); with the Ray
executor the entry point hands the evaluation itself to a Ray task, so evaluations spread over
a cluster. One gate actor per run holds the files the evaluator reads (put once into the object
store and referenced by every task), bounds the evaluations in flight (``executor.max_in_flight``
through the actor's concurrency) and evaluates a program again when the Ray worker (or node)
running it dies (``executor.retries``, ``executor.retry_delay`` seconds apart, doubling); losing
it every time costs that candidate (an
infrastructure failure), never the run. The gate lives on the driver's node (a node that dies
takes its tasks, never the gate; the driver's own node dying ends the run anyway) and is
restarted by Ray if its process dies (``executor.gate_restarts``).

On the worker, the evaluator is the same class as locally, cached per worker process like the
local registry does, and it runs candidates in the project's sandbox there. The labelled files
it reads are written to an ``efe-ray-*`` temporary directory only while the evaluator loads
them, and removed before the evaluation runs. Ray is a heavy optional dependency
(``pip install 'efe[ray]'``): it is imported inside the functions so that evaluators and the
local executor import without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

from evaluators.base import Evaluator, Pending
from evaluators.outcome import Outcome

log = logging.getLogger(__name__)

GATE_NAME = "efe-evaluation-gate"
INFRASTRUCTURE = "invalid:infrastructure"  # the verdict of an evaluation the executor lost
_ON_WORKER: dict[str, tuple[Any, Pending]] = {}  # run key -> (evaluator, its stage-1 hand-off), per Ray worker process
_GATES: dict[tuple[str, str], Any] = {}  # (address, namespace) -> gate handle, per openevolve worker


def shipped_files(spec: dict) -> dict[str, bytes]:
    """The files the evaluator reads (spec keys ending in ``_path``), for the object store."""
    return {key: Path(value).read_bytes() for key, value in spec.items()
            if key.endswith("_path") and isinstance(value, str) and Path(value).is_file()}


def outcome_of(evaluator: Evaluator, source: str, stage: str, pending: Pending) -> Outcome:
    """The evaluator's outcome for one stage (``pending``: its stage-1 hand-off, see ``Pending``);
    an evaluator error costs the candidate only."""
    try:
        return pending.run(evaluator, source, stage)
    except Exception as exc:  # noqa: BLE001 - one candidate, never the run
        log.exception("evaluator error")
        return evaluator.internal_error(source, f"{type(exc).__name__}: {exc}")


def evaluator_on_worker(factory: Callable[[dict], Any], spec: dict, files: dict[str, bytes]
                        ) -> tuple[Any, Pending]:
    """The evaluator for ``spec`` in this Ray worker process (built once, from the shipped files) and
    its stage-1 hand-off. The files are written to a temporary directory for the evaluator to read
    and removed as soon as it has read them: no labelled copy of the data stays on the worker."""
    key = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
    cached = _ON_WORKER.get(key)
    if cached is None:
        directory = Path(tempfile.mkdtemp(prefix=f"efe-ray-{key}-"))
        try:
            local = dict(spec)
            for name, content in files.items():
                path = directory / f"{name}{Path(spec[name]).suffix}"
                path.write_bytes(content)
                local[name] = str(path)
            cached = _ON_WORKER[key] = (factory(local), Pending())
        finally:
            shutil.rmtree(directory, ignore_errors=True)
    return cached


def evaluate_on_worker(factory: Callable[[dict], Any], spec: dict, files: dict[str, bytes], source: str,
                       stage: str) -> Outcome:
    """Body of an evaluation's Ray task: one stage of one program."""
    evaluator, pending = evaluator_on_worker(factory, spec, files)
    return outcome_of(evaluator, source, stage, pending)


def call_on_worker(factory: Callable[[dict], Any], spec: dict, files: dict[str, bytes],
                   fn: Callable[[Any], Any]) -> Any:
    """Body of any other scoring's Ray task (final selection): ``fn(evaluator)``."""
    evaluator, _ = evaluator_on_worker(factory, spec, files)
    return fn(evaluator)


class EvaluationGate:
    """The run's Ray actor: shipped files in the object store, concurrency bound, retries."""

    def __init__(self, files: dict[str, bytes], retries: int, task_cpus: float, retry_delay: float = 0.0,
                 scheduling: str = "DEFAULT") -> None:
        import ray  # lazy: heavy optional dependency, see module docstring

        self.files_ref = ray.put(files)
        self.retries, self.retry_delay = int(retries), float(retry_delay)
        # no retries by Ray itself: the gate retries, and records what each lost attempt said
        options = {"max_retries": 0, "num_cpus": task_cpus, "scheduling_strategy": scheduling}
        self.evaluation = ray.remote(**options)(evaluate_on_worker)
        self.calling = ray.remote(**options)(call_on_worker)

    def evaluate(self, factory: Callable[[dict], Any], spec: dict, source: str, stage: str
                 ) -> tuple[Outcome | None, list[str]]:
        """(outcome, infrastructure failures); the outcome is None when every attempt lost its worker."""
        return self._attempts(self.evaluation, factory, spec, source, stage)

    def call(self, factory: Callable[[dict], Any], spec: dict, fn: Callable[[Any], Any]) -> tuple[Any, list[str]]:
        """(``fn(evaluator)`` on a worker, infrastructure failures); None when every attempt was lost."""
        return self._attempts(self.calling, factory, spec, fn)

    def _attempts(self, task: Any, factory: Callable[[dict], Any], spec: dict, *args: Any) -> tuple[Any, list[str]]:
        import ray  # lazy: heavy optional dependency, see module docstring

        failures: list[str] = []
        for attempt in range(1 + self.retries):
            if attempt:  # give the cluster time to notice a dead node, so the new task goes to a live one
                time.sleep(self.retry_delay * 2 ** (attempt - 1))
            try:
                return ray.get(task.remote(factory, spec, self.files_ref, *args)), failures
            except ray.exceptions.RayTaskError:
                raise  # the scoring itself raised: not the cluster's failure, and another attempt would too
            except ray.exceptions.RayError as exc:
                failures.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return None, failures


def start_gate(spec: dict, executor: dict, node_id: str | None = None) -> Any:
    """Create the run's gate actor on the connected Ray runtime (called by the run, once), on
    ``node_id`` (the driver's node) when given; Ray restarts it ``executor.gate_restarts`` times."""
    import ray  # lazy: heavy optional dependency, see module docstring

    restarts = int(executor.get("gate_restarts", 0))
    options: dict[str, Any] = {"name": executor.get("gate", GATE_NAME), "namespace": executor["namespace"],
                               "max_restarts": restarts, "max_task_retries": restarts}
    if node_id:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy  # lazy: heavy optional dependency

        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node_id=node_id, soft=False)
    actor = ray.remote(num_cpus=0, max_concurrency=int(executor["max_in_flight"]))(EvaluationGate)
    gate = actor.options(**options).remote(
        shipped_files(spec), int(executor.get("retries", 1)), float(executor.get("task_cpus", 1)),
        float(executor.get("retry_delay", 0)), str(executor.get("scheduling", "DEFAULT")))
    ray.get(gate.__ray_ready__.remote())
    return gate


def connect(executor: dict) -> None:
    """Join the run's Ray runtime from this process (idempotent)."""
    import ray  # lazy: heavy optional dependency, see module docstring

    if not ray.is_initialized():
        ray.init(address=executor["address"], namespace=executor["namespace"], log_to_driver=False,
                 logging_level=logging.WARNING)


def _gate(executor: dict) -> Any:
    import ray  # lazy: heavy optional dependency, see module docstring

    connect(executor)
    handle_key = (executor["address"], executor["namespace"])
    if handle_key not in _GATES:
        _GATES[handle_key] = ray.get_actor(executor.get("gate", GATE_NAME), namespace=executor["namespace"])
    return _GATES[handle_key]


def evaluate_remotely(factory: Callable[[dict], Any], spec: dict, source: str, stage: str
                      ) -> tuple[Outcome | None, list[str]]:
    """Evaluate one program stage through the run's gate (from an openevolve worker process)."""
    import ray  # lazy: heavy optional dependency, see module docstring

    try:
        return ray.get(_gate(spec["executor"]).evaluate.remote(factory, spec, source, stage))
    except ray.exceptions.RayError as exc:  # the gate itself or the connection is gone
        _GATES.clear()
        return None, [f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"]


def call_remotely(factory: Callable[[dict], Any], spec: dict, fn: Callable[[Any], Any]) -> tuple[Any, list[str]]:
    """``fn(evaluator)`` on a Ray worker through the run's gate; (None, failures) when it was lost."""
    import ray  # lazy: heavy optional dependency, see module docstring

    try:
        return ray.get(_gate(spec["executor"]).call.remote(factory, spec, fn))
    except ray.exceptions.RayError as exc:  # the gate itself or the connection is gone
        _GATES.clear()
        return None, [f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"]


def infrastructure_outcome(local: Outcome, failures: list[str]) -> Outcome:
    """An internal-error outcome (every metric present) marked as an infrastructure failure."""
    reason = f"infrastructure failure: the Ray worker was lost {len(failures)} time(s) ({failures[-1]})"
    local.verdict, local.reason = INFRASTRUCTURE, reason[:500]
    if local.feedback is not None:
        return local.with_feedback(dataclasses.replace(local.feedback, verdict="invalid (infrastructure)",
                                                       reason=reason[:500]))
    local.artifacts = {**local.artifacts, "verdict": "invalid (infrastructure)", "reason": reason[:500]}
    return local
