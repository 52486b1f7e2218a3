"""The skeleton both evaluators share: the two-stage entry, failures that carry every metric, the sandbox.

openevolve calls ``evaluate`` (or ``stage1`` / ``stage2`` with cascade evaluation) through
``evaluators.service``; an evaluator error becomes ``internal_error``. openevolve 0.4.0 crashes the
run when a result lacks ``combined_score`` or a custom MAP-Elites axis, so every outcome, a failure
included, carries the setting's full metric set: a subclass names it once (``invalid_metrics``) and
``failure`` builds every invalid outcome from it. Scoring stays with each setting.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

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
        return first if not first.valid else self.stage2(source)

    @abstractmethod
    def stage1(self, source: str) -> Outcome:
        """The gates, on a small sample: an invalid outcome with a specific reason, or a provisional valid one."""

    @abstractmethod
    def stage2(self, source: str) -> Outcome:
        """Scoring against the identity on the search's folds or windows."""

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
