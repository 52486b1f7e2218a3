"""Candidate evaluations as Ray tasks (``evolution.executor=ray``).

openevolve still runs its worker processes (prompt, LLM, evaluator entry point); with the Ray
executor the entry point hands the evaluation itself to a Ray task, so evaluations spread over
a cluster. One gate actor per run holds the files the evaluator reads (put once into the object
store and referenced by every task), bounds the evaluations in flight (``executor.max_in_flight``
through the actor's concurrency) and evaluates a program again once when the Ray worker running
it dies; a second death costs that candidate (an infrastructure failure), never the run.

On the worker, the evaluator is the same class as locally, cached per worker process like the
local registry does, and it runs candidates in the project's sandbox there. Ray is a heavy
optional dependency (``pip install 'efe[ray]'``): it is imported inside the functions so that
evaluators and the local executor import without it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import tempfile
from pathlib import Path
from typing import Any, Callable

from evaluators.base import Evaluator, Pending
from evaluators.outcome import Outcome

log = logging.getLogger(__name__)

GATE_NAME = "efe-evaluation-gate"
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


def evaluate_on_worker(factory: Callable[[dict], Any], spec: dict, files: dict[str, bytes], source: str,
                       stage: str) -> Outcome:
    """Body of the Ray task: the evaluator (built once per worker process from the shipped files)."""
    key = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()[:16]
    cached = _ON_WORKER.get(key)
    if cached is None:
        directory = Path(tempfile.mkdtemp(prefix=f"efe-ray-{key}-"))
        local = dict(spec)
        for name, content in files.items():
            path = directory / f"{name}{Path(spec[name]).suffix}"
            path.write_bytes(content)
            local[name] = str(path)
        cached = _ON_WORKER[key] = (factory(local), Pending())
    evaluator, pending = cached
    return outcome_of(evaluator, source, stage, pending)


class EvaluationGate:
    """The run's Ray actor: shipped files in the object store, concurrency bound, one retry."""

    def __init__(self, files: dict[str, bytes], retries: int, task_cpus: float) -> None:
        import ray  # lazy: heavy optional dependency, see module docstring

        self.files_ref = ray.put(files)
        self.retries = int(retries)
        self.task = ray.remote(max_retries=0, num_cpus=task_cpus)(evaluate_on_worker)

    def evaluate(self, factory: Callable[[dict], Any], spec: dict, source: str, stage: str
                 ) -> tuple[Outcome | None, list[str]]:
        """(outcome, infrastructure failures); the outcome is None when every attempt lost its worker."""
        import ray  # lazy: heavy optional dependency, see module docstring

        failures: list[str] = []
        for _ in range(1 + self.retries):
            try:
                return ray.get(self.task.remote(factory, spec, self.files_ref, source, stage)), failures
            except ray.exceptions.RayError as exc:
                failures.append(f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}")
        return None, failures


def start_gate(spec: dict, executor: dict) -> Any:
    """Create the run's gate actor on the connected Ray runtime (called by the run, once)."""
    import ray  # lazy: heavy optional dependency, see module docstring

    actor = ray.remote(num_cpus=0, max_concurrency=int(executor["max_in_flight"]))(EvaluationGate)
    gate = actor.options(name=executor.get("gate", GATE_NAME), namespace=executor["namespace"]).remote(
        shipped_files(spec), int(executor.get("retries", 1)), float(executor.get("task_cpus", 1)))
    ray.get(gate.__ray_ready__.remote())
    return gate


def connect(executor: dict) -> None:
    """Join the run's Ray runtime from this process (idempotent)."""
    import ray  # lazy: heavy optional dependency, see module docstring

    if not ray.is_initialized():
        ray.init(address=executor["address"], namespace=executor["namespace"], log_to_driver=False,
                 logging_level=logging.WARNING)


def evaluate_remotely(factory: Callable[[dict], Any], spec: dict, source: str, stage: str
                      ) -> tuple[Outcome | None, list[str]]:
    """Evaluate one program stage through the run's gate (from an openevolve worker process)."""
    import ray  # lazy: heavy optional dependency, see module docstring

    executor = spec["executor"]
    try:
        connect(executor)
        handle_key = (executor["address"], executor["namespace"])
        if handle_key not in _GATES:
            _GATES[handle_key] = ray.get_actor(executor.get("gate", GATE_NAME), namespace=executor["namespace"])
        return ray.get(_GATES[handle_key].evaluate.remote(factory, spec, source, stage))
    except ray.exceptions.RayError as exc:  # the gate itself or the connection is gone
        _GATES.clear()
        return None, [f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"]


def infrastructure_outcome(local: Outcome, failures: list[str]) -> Outcome:
    """An internal-error outcome (every metric present) marked as an infrastructure failure."""
    reason = f"infrastructure failure: the Ray worker was lost {len(failures)} time(s) ({failures[-1]})"
    local.verdict, local.reason = "invalid:infrastructure", reason[:500]
    if local.feedback is not None:
        return local.with_feedback(dataclasses.replace(local.feedback, verdict="invalid (infrastructure)",
                                                       reason=reason[:500]))
    local.artifacts = {**local.artifacts, "verdict": "invalid (infrastructure)", "reason": reason[:500]}
    return local
