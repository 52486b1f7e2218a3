"""A frozen tabular program run in the sandbox: its state sent once, each call a fresh child.

The one sandboxed path for frozen programs: ``efe.apply`` (every engine, one per worker) and
``load_program(sandboxed=True)``. A frozen program is reviewed and hash-checked, but it is
still code an LLM wrote; here it runs with the search's isolation.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from efe.core.errors import FrozenRunError
from efe.core.specs import SandboxSpec, conf_part
from efe.sandbox import Sandbox, SandboxFailure
from efe.sandbox import plan as step


def frozen_limits() -> SandboxSpec:
    """The sandbox limits of a frozen program (conf/apply.yaml ``sandbox_limits``)."""
    return conf_part(SandboxSpec, "apply", "sandbox_limits")


class SandboxedProgram:
    def __init__(self, source: str, state: Any, limits: SandboxSpec | None = None) -> None:
        """``limits``: None gives ``frozen_limits()``."""
        self.source = source
        self.sandbox = Sandbox(limits or frozen_limits())
        self.sandbox.load("frozen", {"state": state})

    def transform(self, X: pd.DataFrame, where: str = "the input") -> pd.DataFrame:
        return self._run([step.transform("X", "state", "T")], {"X": X}, "T", where)

    def fit(self, X: pd.DataFrame, y: pd.Series) -> dict:
        """The program's own ``fit`` on new data; later ``transform`` calls use this state."""
        state = self._run([step.fit("X", "y", "S")], {"X": X, "y": y}, "S", "fitting")
        self.sandbox.load("frozen", {"state": state})
        return state

    def _run(self, plan: list[step.Step], values: dict, out: str, where: str) -> Any:
        result = self.sandbox.run(self.source, "tab", plan, [out], data="frozen", values=values)
        if isinstance(result, SandboxFailure):
            raise FrozenRunError(f"the program failed on {where}: {result.reason}")
        return result.outputs[out]

    def close(self) -> None:
        self.sandbox.close()
