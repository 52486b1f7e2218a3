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
import traceback
from pathlib import Path
from typing import Any, Callable

from efe.outcomes import write_outcome
from efe.runspec import SPEC_ENV, read_spec

log = logging.getLogger(__name__)


class EvaluatorRegistry:
    def __init__(self, factory: Callable[[dict], Any]) -> None:
        self.factory = factory
        self.instances: dict[str, Any] = {}
        self.lock = threading.Lock()
        atexit.register(self.close_all)

    def get(self, spec_path: str | None = None) -> Any:
        raw = spec_path or os.environ.get(SPEC_ENV)
        if not raw:
            read_spec(None)  # raises the explanatory error
        path = str(Path(raw).resolve())
        with self.lock:
            if path not in self.instances:
                self.instances[path] = self.factory(read_spec(path))
            return self.instances[path]

    def run(self, program_path: str, stage: str) -> Any:
        from openevolve.evaluation_result import EvaluationResult

        source = Path(program_path).read_text()
        evaluator = self.get()
        try:
            outcome = getattr(evaluator, stage)(source)
        except Exception as exc:  # noqa: BLE001 - see module docstring
            log.error("evaluator error on %s: %s", program_path, traceback.format_exc())
            outcome = evaluator.internal_error(source, f"{type(exc).__name__}: {exc}")
        outcomes_dir = evaluator.spec.get("outcomes_dir")
        if outcomes_dir:
            write_outcome(outcomes_dir, source, outcome.summary())
        return EvaluationResult(metrics=dict(outcome.metrics), artifacts=dict(outcome.artifacts))

    def entry_points(self) -> tuple[Callable, Callable, Callable]:
        return (lambda p: self.run(p, "evaluate"), lambda p: self.run(p, "stage1"), lambda p: self.run(p, "stage2"))

    def close_all(self) -> None:
        for ev in self.instances.values():
            ev.close()
