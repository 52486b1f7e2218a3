"""What an evaluation of one program produced, in both settings."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Outcome:
    metrics: dict[str, float]
    artifacts: dict[str, str] = field(default_factory=dict)
    verdict: str = "valid"
    reason: str = ""
    stage: str = "stage2"
    columns: dict[str, list[str]] = field(default_factory=dict)  # tabular: new / dropped columns
    runtime_s: float | None = None  # kept out of metrics and prompts: it varies run to run

    @property
    def valid(self) -> bool:
        return self.verdict == "valid"

    def summary(self) -> dict:
        """What the lineage records about this outcome."""
        return {"verdict": self.verdict, "reason": self.reason, "stage": self.stage,
                "new_columns": self.columns.get("new", []), "dropped_columns": self.columns.get("dropped", []),
                "runtime_s": self.runtime_s}
