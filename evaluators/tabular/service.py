"""Process-wide evaluator instances keyed by run spec, and the openevolve entry points."""

from __future__ import annotations

import atexit
import os
import threading
from pathlib import Path
from typing import Any, Callable

from efe.runspec import SPEC_ENV, read_spec
from evaluators.tabular.evaluator import Outcome, TabEvaluator

_instances: dict[str, TabEvaluator] = {}
_lock = threading.Lock()
_observers: list[Callable[[str, Outcome], None]] = []


def get_evaluator(spec_path: str | None = None) -> TabEvaluator:
    path = str(Path(spec_path or os.environ.get(SPEC_ENV, "")).resolve()) if (spec_path or os.environ.get(SPEC_ENV)) else None
    if path is None:
        read_spec(None)  # raises the explanatory error
    with _lock:
        if path not in _instances:
            _instances[path] = TabEvaluator(read_spec(path))
        return _instances[path]


def add_observer(fn: Callable[[str, Outcome], None]) -> None:
    """Called with (program_path, outcome) after every evaluation in this process."""
    _observers.append(fn)


def _result(program_path: str, outcome: Outcome) -> Any:
    for fn in list(_observers):
        fn(program_path, outcome)
    try:
        from openevolve.evaluation_result import EvaluationResult
    except ImportError:  # pragma: no cover - openevolve is a dependency
        return outcome.metrics
    return EvaluationResult(metrics=dict(outcome.metrics), artifacts=dict(outcome.artifacts))


def _read(program_path: str) -> str:
    return Path(program_path).read_text()


def evaluate(program_path: str) -> Any:
    return _result(program_path, get_evaluator().evaluate(_read(program_path)))


def evaluate_stage1(program_path: str) -> Any:
    return _result(program_path, get_evaluator().stage1(_read(program_path)))


def evaluate_stage2(program_path: str) -> Any:
    return _result(program_path, get_evaluator().stage2(_read(program_path)))


@atexit.register
def _shutdown() -> None:
    for ev in _instances.values():
        ev.close()
