"""What an evaluation of one program produced, in both settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from efe.core.feedback_record import FeedbackRecord, render_artifacts


@dataclass
class Outcome:
    metrics: dict[str, float]
    artifacts: dict[str, str] = field(default_factory=dict)
    verdict: str = "valid"
    reason: str = ""
    stage: str = "stage2"
    columns: dict[str, list[str]] = field(default_factory=dict)  # tabular: new / dropped columns
    runtime_s: float | None = None  # kept out of metrics and prompts: it varies run to run
    feedback: FeedbackRecord | None = None  # the feedback as data; ``artifacts`` is rendered from it
    # what a passed stage 1 hands to the same program's stage 2 (tabular: ``FirstFolds``; None: nothing);
    # never recorded, and dropped before the outcome leaves the evaluating process (``Pending``)
    handoff: Any = None
    # tabular: the paired per-fold gains behind ``delta_auc`` (final selection reads how finalists co-vary)
    fold_deltas: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if self.feedback is not None:
            self.artifacts = render_artifacts(self.feedback)

    def with_feedback(self, feedback: FeedbackRecord) -> "Outcome":
        """This outcome with other feedback (and the artifacts rendered from it)."""
        self.feedback = feedback
        self.artifacts = render_artifacts(feedback)
        return self

    @property
    def valid(self) -> bool:
        return self.verdict == "valid"

    def summary(self) -> dict:
        """What the lineage records about this outcome."""
        return {"verdict": self.verdict, "reason": self.reason, "stage": self.stage,
                "new_columns": self.columns.get("new", []), "dropped_columns": self.columns.get("dropped", []),
                "runtime_s": self.runtime_s}
