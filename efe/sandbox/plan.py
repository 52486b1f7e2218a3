"""A sandbox plan, typed: the steps a child runs on the program, in order.

Each step calls one entry point of the program (``fit``, ``transform``, ``inverse_transform``) on
named values and stores the result under ``out``, or fingerprints named values as they are now
(``digest``: the one "was it changed in place?" probe of both settings). ``keep_going`` lets the
plan go on after a step of the program fails (later steps that need its output are skipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

OPS = ("fit", "transform", "inverse_transform", "digest")


@dataclass(frozen=True)
class Step:
    op: str
    args: tuple[str, ...]
    out: str
    keep_going: bool = False

    def __post_init__(self) -> None:
        if self.op not in OPS:
            raise ValueError(f"unknown plan step {self.op!r}; one of {', '.join(OPS)}")
        object.__setattr__(self, "args", tuple(self.args))

    def to_dict(self) -> dict[str, Any]:
        """The step as the child reads it (plain data across the process boundary)."""
        return {"op": self.op, "args": list(self.args), "out": self.out, "keep_going": self.keep_going}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Step":
        return cls(str(d["op"]), tuple(d["args"]), str(d["out"]), bool(d.get("keep_going", False)))


def fit(x: str, y: str, out: str, keep_going: bool = False) -> Step:
    """``out = program.fit(x, y)`` (tabular: labels; time series: the series' meta)."""
    return Step("fit", (x, y), out, keep_going)


def transform(x: str, state: str, out: str, keep_going: bool = False) -> Step:
    return Step("transform", (x, state), out, keep_going)


def inverse_transform(z: str, state: str, out: str, keep_going: bool = False) -> Step:
    return Step("inverse_transform", (z, state), out, keep_going)


def digest(*names: str, out: str, keep_going: bool = False) -> Step:
    """Fingerprints (``plain.digest``) of the named values as they are now, one per name."""
    return Step("digest", names, out, keep_going)


def as_steps(plan: Sequence[Step | Mapping[str, Any]]) -> list[Step]:
    """A plan given as steps or as their dicts, as steps (an unknown op is refused here, in the caller)."""
    return [s if isinstance(s, Step) else Step.from_dict(s) for s in plan]
