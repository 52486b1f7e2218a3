"""The records a run leaves in its directory, read in one place.

``lineage.jsonl`` holds one entry per candidate (valid or not), appended by the search while it
runs (``efe.search.lineage.LineageRecorder`` writes each through :class:`LineageEntry`); every
reader (selection, reports, plots, traces, memory, steering) reads it through :func:`read_lineage`
and asks the entry, not its dict, what it is: a program or an iteration without one, valid or
not, its fitness, its parent, where its source is.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

from efe.rundir.jsonl import read_jsonl
from efe.rundir.paths import LINEAGE

SEED, CANDIDATE, MIGRANT, NO_PROGRAM = "seed", "candidate", "migrant", "no_program"
PROGRAM_KINDS = (SEED, CANDIDATE, MIGRANT)   # entries that name a program (a migrant: a copy on another island)
SEARCHED_KINDS = (SEED, CANDIDATE)           # programs the search itself evaluated
REJECTED_VERDICTS = ("duplicate_rejected", "judge_rejected")  # proposals turned down before evaluation

# The keys of a line, in the order the recorder has always written them.
_KEYS = ("kind", "id", "parent", "island", "iteration", "generation", "metrics", "verdict", "reason", "stage",
         "new_columns", "dropped_columns", "runtime_s", "code_sha256", "changes", "plan", "role", "time")
_ALWAYS = {"kind", "id", "parent", "island", "iteration", "metrics", "verdict", "reason", "role", "time"}
_PROGRAM_ONLY = {"generation", "stage", "new_columns", "dropped_columns", "runtime_s", "code_sha256", "changes"}


@dataclass(frozen=True)
class LineageEntry:
    """One line of ``lineage.jsonl``: a program the search met (seed, candidate, migrant) or an
    iteration that produced none (``no_program``: an LLM error, a rejected proposal, a lost iteration)."""

    kind: str
    id: str | None = None
    parent: str | None = None
    island: int | None = None
    iteration: int | None = None
    generation: int | None = None
    metrics: Mapping[str, float] = field(default_factory=dict)   # the evaluator's numbers (combined_score, valid, ...)
    verdict: str | None = None       # "valid", "invalid (<kind>)", "no_program", "judge_rejected", "lost", ...
    reason: str | None = None
    stage: str | None = None
    new_columns: tuple[str, ...] = ()
    dropped_columns: tuple[str, ...] = ()
    runtime_s: float | None = None
    code_sha256: str | None = None   # the program's source hash (programs/<hash>.py)
    changes: Any = None
    plan: str | None = None
    role: str | None = None
    time: float | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)      # keys this version does not know, kept as read

    # ------------------------------------------------------------------ what the entry is
    @property
    def is_program(self) -> bool:
        """It names a program (seed, candidate or migrant), not an iteration without one."""
        return self.kind in PROGRAM_KINDS

    @property
    def valid(self) -> bool:
        """The evaluator passed it (``metrics.valid == 1``)."""
        return self.metrics.get("valid") == 1.0

    @property
    def invalid(self) -> bool:
        """A program the evaluator turned down (an iteration without a program is neither valid nor invalid)."""
        return self.is_program and not self.valid

    @property
    def is_valid_candidate(self) -> bool:
        """A valid program the search itself evaluated (the seed or a candidate; not a migrant's copy):
        what the search's best, the finalists and the memory choose from."""
        return self.kind in SEARCHED_KINDS and self.valid

    @property
    def rejected(self) -> bool:
        """A proposal turned down before evaluation (near-duplicate or judge)."""
        return self.verdict in REJECTED_VERDICTS

    @property
    def duplicate(self) -> bool:
        """A proposal turned down as a near-duplicate of an evaluated program."""
        return self.verdict == "duplicate_rejected"

    # ------------------------------------------------------------------ its numbers
    @property
    def fitness(self) -> float | None:
        """The search fitness (``combined_score``); None when the entry has none (or not a finite number)."""
        return fitness_of(self.metrics)

    @property
    def score(self) -> float:
        """The fitness the search ranks by: 0.0 when the entry has none."""
        value = self.fitness
        return 0.0 if value is None else value

    def gain_over(self, parent_score: float | None) -> float | None:
        """This entry's fitness minus its parent's (None when the parent's is unknown)."""
        return None if parent_score is None else self.score - parent_score

    def program_file(self, run_dir: str | Path) -> Path:
        """Where the run keeps this program's source (``programs/<hash>.py``)."""
        if not self.code_sha256:
            raise ValueError(f"lineage entry {self.id!r} ({self.kind}) names no program source")
        return Path(run_dir) / "programs" / f"{self.code_sha256}.py"

    def source(self, run_dir: str | Path) -> str:
        return self.program_file(run_dir).read_text()

    # ------------------------------------------------------------------ the line on disk
    def to_dict(self) -> dict[str, Any]:
        """The line as the recorder writes it: the same keys, in the same order, as always."""
        out: dict[str, Any] = {}
        for key in _KEYS:
            value = getattr(self, key)
            if key in ("new_columns", "dropped_columns"):
                value = list(value)
            elif key == "metrics":
                value = dict(value)
            if key in _ALWAYS or (key in _PROGRAM_ONLY and self.kind != NO_PROGRAM) or value:
                out[key] = value
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LineageEntry":
        """An entry from a parsed line; tolerant of older files (missing keys are None, unknown ones kept in ``extra``)."""
        metrics = data.get("metrics")
        iteration, island, generation = (_int(data.get(k)) for k in ("iteration", "island", "generation"))
        runtime = data.get("runtime_s")
        return cls(
            kind=str(data.get("kind") or ""),
            id=data.get("id"), parent=data.get("parent"),
            island=island, iteration=iteration, generation=generation,
            metrics=dict(metrics) if isinstance(metrics, Mapping) else {},
            verdict=_str(data.get("verdict")), reason=_str(data.get("reason")), stage=_str(data.get("stage")),
            new_columns=tuple(str(c) for c in data.get("new_columns") or ()),
            dropped_columns=tuple(str(c) for c in data.get("dropped_columns") or ()),
            runtime_s=runtime if _number(runtime) else None,
            code_sha256=_str(data.get("code_sha256")), changes=data.get("changes"), plan=data.get("plan"),
            role=_str(data.get("role")),
            time=data["time"] if _number(data.get("time")) else None,
            extra={k: v for k, v in data.items() if k not in _KEYS},
        )


def fitness_of(metrics: Any) -> float | None:
    """``combined_score`` of a metrics mapping (a lineage entry's, or an openevolve program's) as a finite
    float; None when there is none."""
    value = metrics.get("combined_score") if isinstance(metrics, Mapping) else None
    return float(value) if _number(value) and math.isfinite(value) else None


def _str(value: Any) -> str | None:
    return value if value is None or isinstance(value, str) else str(value)


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _int(value: Any) -> int | None:
    return int(value) if _number(value) else None


def read_lineage(path: str | Path) -> list[LineageEntry]:
    """Entries of ``lineage.jsonl`` (a run directory or the file itself); a torn last line is skipped."""
    p = Path(path)
    if p.is_dir():
        p = p / LINEAGE
    return [LineageEntry.from_dict(d) for d in read_jsonl(p)]


def best_valid(lineage: Iterable[LineageEntry]) -> LineageEntry | None:
    """The highest-fitness valid program the search evaluated; ties go to the earliest (usually the simpler)."""
    best = None
    for entry in lineage:
        if entry.is_valid_candidate and (best is None or entry.score > best.score):
            best = entry
    return best


def scores_by_id(lineage: Iterable[LineageEntry]) -> dict[str, float]:
    """Every program's fitness by id (the parents' scores a child's gain is measured against)."""
    return {e.id: e.score for e in lineage if e.is_program and e.id}
