"""A frozen program run in the sandbox: tabular or time series, each call a fresh child.

The one sandboxed path for frozen programs: ``efe.load_program`` (by default), ``efe.apply``
(every engine, one per worker), ``efe.package`` (its sample outputs and probes). A frozen program
is reviewed and hash-checked, but it is still code an LLM wrote, and a hash recomputed by whoever
edited the directory proves nothing: here it runs with the search's isolation, and nothing of it
(not even its module-level code) runs in the caller's process.

``shared=True`` uses one sandbox worker per process and set of limits (``shared_sandbox``): loading
many programs (a Pipeline's clones, scikit-learn's estimator checks) then starts one worker, not one
each. The worker never runs program code itself; each call forks a locked-down child from it.
"""

from __future__ import annotations

import atexit
import dataclasses
import hashlib
import threading
from typing import Any

import numpy as np
import pandas as pd

from efe.core import plain
from efe.core.errors import FrozenRunError
from efe.core.specs import SandboxSpec, conf_part
from efe.sandbox import Sandbox, SandboxError, SandboxFailure
from efe.sandbox.client import NO_KERNEL_ISOLATION
from efe.sandbox import plan as step

_SHARED: dict[tuple, Sandbox] = {}
_SHARED_LOCK = threading.Lock()


def frozen_limits(require_isolation: bool | None = None) -> SandboxSpec:
    """The sandbox limits of a frozen program (conf/apply.yaml ``sandbox_limits``); ``require_isolation``
    (not None) overrides that file's ``require_isolation``."""
    limits = conf_part(SandboxSpec, "apply", "sandbox_limits")
    return limits if require_isolation is None else dataclasses.replace(limits, require_isolation=require_isolation)


def shared_sandbox(limits: SandboxSpec) -> Sandbox:
    """This process's sandbox for frozen programs with these limits (started on first use, closed at exit)."""
    key = dataclasses.astuple(limits)
    with _SHARED_LOCK:
        box = _SHARED.get(key)
        if box is None:
            box = _SHARED[key] = Sandbox(limits)
            atexit.register(box.close)
        return box


class SandboxedProgram:
    """A frozen program's entry points, each run in the sandbox.

    Tabular: ``transform(X)`` with the state given (sent once, kept by the worker), ``fit(X, y)``
    to learn a new one. Time series: ``fit_series(y, meta)``, ``transform_series(y, state)`` and
    ``inverse_series(z, state)`` (a state per series, sent with each call).
    """

    def __init__(self, source: str, state: Any = None, limits: SandboxSpec | None = None, *,
                 setting: str = "tab", shared: bool = False) -> None:
        """``limits``: None gives ``frozen_limits()``."""
        self.source = source
        self.setting = setting
        self.limits = limits or frozen_limits()
        self.shared = shared
        self.sandbox = shared_sandbox(self.limits) if shared else Sandbox(self.limits)
        if self.limits.require_isolation and self.sandbox.isolation_mode() == NO_KERNEL_ISOLATION:
            raise FrozenRunError("sandbox_limits.require_isolation=true (conf/apply.yaml, or require_isolation=True in "
                                 "code), but the kernel gives the "
                                 "sandbox no isolation here (namespaces refused, no seccomp): refusing to run the "
                                 "frozen program")
        self.state: Any = None
        self._key: str | None = None
        if state is not None and setting == "tab":
            self._use_state(state)

    def _use_state(self, state: Any) -> None:
        """Send ``state`` to the worker once, under a key named by its content (shared workers reuse it)."""
        digest = hashlib.sha256(plain.encode({"state": state})).hexdigest()[:24]
        self.state, self._key = state, f"frozen-{digest}"
        if not self.sandbox.has(self._key):
            self.sandbox.load(self._key, {"state": state})

    # ------------------------------------------------------------------ tabular
    def transform(self, X: pd.DataFrame, where: str = "the input") -> pd.DataFrame:
        if self._key is None:
            raise FrozenRunError("the sandboxed program has no state: fit it first")
        return self._run([step.transform("X", "state", "T")], {"X": X}, "T", where, data=self._key)

    def fit(self, X: pd.DataFrame, y: pd.Series) -> dict:
        """The program's own ``fit`` on new data; later ``transform`` calls use this state."""
        state = self._run([step.fit("X", "y", "S")], {"X": X, "y": y}, "S", "fitting")
        self._use_state(state)
        return state

    # ------------------------------------------------------------------ time series
    def fit_series(self, y: np.ndarray, meta: dict) -> dict:
        return self._run([step.fit("y", "meta", "S")], {"y": y, "meta": meta}, "S", "fitting a history")

    def transform_series(self, y: np.ndarray, state: Any) -> Any:
        return self._run([step.transform("y", "state", "Z")], {"y": y, "state": state}, "Z", "a series")

    def inverse_series(self, z: np.ndarray, state: Any) -> Any:
        return self._run([step.inverse_transform("z", "state", "Y")], {"z": z, "state": state}, "Y",
                         "a forecast")

    # ------------------------------------------------------------------ plumbing
    def _run(self, plan: list[step.Step], values: dict, out: str, where: str, data: str | None = None) -> Any:
        try:
            result = self.sandbox.run(self.source, self.setting, plan, [out], data=data, values=values)
        except SandboxError:
            if data is None:
                raise
            # a shared worker keeps a bounded number of states: send ours again, once
            self.sandbox.load(data, {"state": self.state})
            result = self.sandbox.run(self.source, self.setting, plan, [out], data=data, values=values)
        if isinstance(result, SandboxFailure):
            raise FrozenRunError(f"the program failed on {where}: {result.reason}")
        return result.outputs[out]

    def isolation_mode(self) -> str:
        return self.sandbox.isolation_mode()

    def close(self) -> None:
        """Stop this program's worker (a shared worker stays for the others, until the process exits)."""
        if not self.shared:
            self.sandbox.close()

    def __getstate__(self) -> dict:
        """Picklable (a fitted transformer in a joblib dump): the worker is started again where it is loaded."""
        return {"source": self.source, "setting": self.setting, "limits": self.limits, "shared": self.shared,
                "state": self.state}

    def __setstate__(self, saved: dict) -> None:
        self.__init__(saved["source"], saved["state"], saved["limits"], setting=saved["setting"],
                      shared=saved["shared"])
