"""Process-wide evaluator instances keyed by run spec, and the openevolve entry points.

The entry points never raise: openevolve replaces an evaluator exception with metrics that
lack the MAP-Elites axes, which crashes the run, so an internal error becomes an invalid
outcome with every metric present.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import traceback
from pathlib import Path
from typing import Any

from efe.runspec import SPEC_ENV, read_spec
from evaluators.tabular.evaluator import Outcome, TabEvaluator

log = logging.getLogger(__name__)
_instances: dict[str, TabEvaluator] = {}
_lock = threading.Lock()


def get_evaluator(spec_path: str | None = None) -> TabEvaluator:
    raw = spec_path or os.environ.get(SPEC_ENV)
    if not raw:
        read_spec(None)  # raises the explanatory error
    path = str(Path(raw).resolve())
    with _lock:
        if path not in _instances:
            _instances[path] = TabEvaluator(read_spec(path))
        return _instances[path]


def _run(program_path: str, stage: str) -> Any:
    source = Path(program_path).read_text()
    evaluator = get_evaluator()
    try:
        outcome = getattr(evaluator, stage)(source)
    except Exception as exc:  # noqa: BLE001 - see module docstring
        log.error("evaluator error on %s: %s", program_path, traceback.format_exc())
        outcome = evaluator.internal_error(source, f"{type(exc).__name__}: {exc}")
    outcomes_dir = evaluator.spec.get("outcomes_dir")
    if outcomes_dir:
        from efe.search.lineage import write_outcome

        write_outcome(outcomes_dir, source, outcome.summary())
    from openevolve.evaluation_result import EvaluationResult

    return EvaluationResult(metrics=dict(outcome.metrics), artifacts=dict(outcome.artifacts))


def evaluate(program_path: str) -> Any:
    return _run(program_path, "evaluate")


def evaluate_stage1(program_path: str) -> Any:
    return _run(program_path, "stage1")


def evaluate_stage2(program_path: str) -> Any:
    return _run(program_path, "stage2")


@atexit.register
def _shutdown() -> None:
    for ev in _instances.values():
        ev.close()
