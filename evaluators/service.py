"""Process-wide evaluator instances keyed by run spec, and openevolve's entry points for them.

openevolve executes the thin evaluator files (``tab.py``, ``time.py``) anew for every program;
this module stays cached in ``sys.modules``, so data, baselines and the sandbox worker are
built once per process. The entry points never raise: openevolve replaces an exception with
metrics that lack the MAP-Elites axes, which crashes the run, so an internal error becomes an
invalid outcome with every metric present.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
from pathlib import Path
from typing import Any, Callable

from openevolve.evaluation_result import EvaluationResult

from efe.rundir.outcomes import write_feedback
from efe.rundir.outcomes import write_outcome
from efe.core.runspec import SPEC_ENV, read_spec
from efe.core.specs import load_spec
from evaluators.base import Evaluator, Pending
from evaluators.outcome import Outcome
from evaluators.ray_executor import (
    evaluate_remotely,
    infrastructure_outcome,
    outcome_of,
)

log = logging.getLogger(__name__)


class EvaluatorRegistry:
    def __init__(self, factory: Callable[[dict], Evaluator]) -> None:
        self.factory = factory
        self.instances: dict[str, Evaluator] = {}
        self.pending: dict[str, Pending] = {}  # per instance: its stage-1 hand-off for the stage-2 call
        self.lock = threading.Lock()
        atexit.register(self.close_all)

    def get(self, spec_path: str | None = None) -> Evaluator:
        path = self._spec_path(spec_path)
        with self.lock:
            if path not in self.instances:
                self.instances[path] = self.factory(load_spec(path))
                self.pending[path] = Pending()
            return self.instances[path]

    @staticmethod
    def _spec_path(spec_path: str | None = None) -> str:
        raw = spec_path or os.environ.get(SPEC_ENV)
        if not raw:
            read_spec(None)  # raises the explanatory error
        return str(Path(raw).resolve())

    def run(self, program_path: str, stage: str) -> Any:
        source = Path(program_path).read_text()
        search = load_spec(self._spec_path()).search  # None: a spec for scoring only (no search around it)
        if search is not None and search.executor["kind"] == "ray":
            outcome = self._run_on_ray(read_spec(self._spec_path()), source, stage)
        else:
            evaluator = self.get()
            outcome = outcome_of(evaluator, source, stage, self.pending[self._spec_path()])
        if search is not None:
            write_outcome(search.outcomes_dir, source, outcome.summary())
            if outcome.feedback is not None:  # the offline proposer reads it when this program is a parent
                write_feedback(search.outcomes_dir, source, outcome.feedback)
        return EvaluationResult(metrics=dict(outcome.metrics), artifacts=dict(outcome.artifacts))

    def _run_on_ray(self, spec: dict, source: str, stage: str) -> Outcome:
        """The evaluation as a Ray task; a lost worker is retried once, then costs this candidate."""
        outcome, failures = evaluate_remotely(self.factory, spec, source, stage)
        if failures:
            log.warning("Ray worker lost while evaluating a program: %s", "; ".join(failures))
        if outcome is None:
            outcome = infrastructure_outcome(self.get().internal_error(source, "Ray worker lost"), failures)
        return outcome

    def entry_points(self) -> tuple[Callable, Callable, Callable]:
        return (lambda p: self.run(p, "evaluate"), lambda p: self.run(p, "stage1"), lambda p: self.run(p, "stage2"))

    def close_all(self) -> None:
        for ev in self.instances.values():
            ev.close()
