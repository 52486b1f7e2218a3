"""The skeleton both evaluators share: the two-stage entry, failures that carry every metric, the sandbox.

openevolve calls ``evaluate`` (or ``stage1`` / ``stage2`` with cascade evaluation) through
``evaluators.service``; an evaluator error becomes ``internal_error``. openevolve 0.4.0 crashes the
run when a result lacks ``combined_score`` or a custom MAP-Elites axis, so every outcome, a failure
included, carries the setting's full metric set: a subclass names it once (``invalid_metrics``) and
``failure`` builds every invalid outcome from it. Scoring stays with each setting.

Stage 1 may hand stage 2 what it already computed (``Outcome.handoff``): ``evaluate`` passes it on
directly; for openevolve's two separate stage calls, ``Pending`` keeps the latest one per evaluator.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any

from efe.core.feedback_record import failure_record
from efe.sandbox import Sandbox
from evaluators.outcome import Outcome



class Evaluator(ABC):
    """One setting's evaluation of program sources (tabular: ``TabEvaluator``, time series: ``TimeEvaluator``)."""

    sandbox: Sandbox
    setting: str                  # "tab" | "time": the feedback record's setting
    output_chars: int = 1500      # the tail of a program's printed output that reaches the prompt
                                  #   (tabular: conf feedback.output_chars)

    def close(self) -> None:
        self.sandbox.close()

    def evaluate(self, source: str) -> Outcome:
        """Stage 1 (gates), then stage 2 (scoring) for a program that passed them."""
        first = self.stage1(source)
        return first if not first.valid else self.stage2(source, first.handoff)

    @abstractmethod
    def stage1(self, source: str) -> Outcome:
        """The gates, on a small sample: an invalid outcome with a specific reason, or a provisional valid one."""

    @abstractmethod
    def stage2(self, source: str, handoff: Any = None) -> Outcome:
        """Scoring against the identity on the search's folds or windows.

        ``handoff``: what this program's stage 1 handed on (``Outcome.handoff``), or None."""

    @abstractmethod
    def invalid_metrics(self, source: str) -> dict[str, float]:
        """Every metric of the setting, at the invalid score (``combined_score`` and each MAP-Elites axis)."""

    def internal_error(self, source: str, message: str, max_chars: int = 500) -> Outcome:
        """An evaluator bug must cost one candidate, never the run (the reason keeps ``max_chars``)."""
        return self.failure(self.invalid_metrics(source), "internal", "internal",
                            f"evaluator error: {message}"[:max_chars])

    def failure(self, metrics: dict[str, float], stage: str, kind: str, reason: str,
                stdout: str | None = None) -> Outcome:
        """An invalid outcome: its verdict, reason and stage for the lineage, and the same as prompt feedback
        (a record; the artifacts are rendered from it), with the tail of what the program printed."""
        return Outcome(metrics, {}, f"invalid:{kind}", reason, stage,
                       feedback=failure_record(self.setting, kind, reason, stage, self._output_tail(stdout)))

    def _output_tail(self, stdout: str | None) -> str:
        """What the program printed, as much of its end as the prompt takes (``output_chars``)."""
        return stdout[-self.output_chars:] if stdout else ""


class Pending:
    """Stage 1's hand-off between openevolve's separate stage calls of one program (cascade evaluation).

    openevolve calls ``evaluate_stage1`` and then ``evaluate_stage2`` with the program's path only;
    the entry points keep the latest stage-1 hand-off here (one per evaluator) and give it to the
    stage-2 call of the same source. A miss (another program's stage 1 came between) costs stage 2
    only a rerun of what it would have been handed.
    """

    def __init__(self) -> None:
        self._latest: tuple[str, Any] | None = None
        self._lock = threading.Lock()

    def run(self, evaluator: Evaluator, source: str, stage: str) -> Outcome:
        """``evaluator``'s ``stage`` ("evaluate", "stage1" or "stage2") on ``source``, its hand-off kept here."""
        if stage == "stage2":
            with self._lock:
                latest, self._latest = self._latest, None
            outcome = evaluator.stage2(source, latest[1] if latest and latest[0] == source else None)
        else:
            outcome = getattr(evaluator, stage)(source)
            if stage == "stage1":
                with self._lock:
                    self._latest = (source, outcome.handoff) if outcome.valid and outcome.handoff is not None else None
        outcome.handoff = None  # it stays in this process
        return outcome
