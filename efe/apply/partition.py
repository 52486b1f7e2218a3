"""One frozen program applied to one partition of rows, the same way by every engine.

``PartitionTransformer`` is what pandas, Dask and Spark share: it holds the frozen source, the
fitted state and the manifest's schemas (plain, picklable data, shipped to each worker once),
checks a partition against the input schema, transforms it (in the sandbox by default) and
conforms the result to the output schema. It never refits: a frozen transform is
row-independent (a gate checks it), so applying it partition by partition is exact.
"""

from __future__ import annotations

import atexit
import threading
from typing import Any

import pandas as pd

from efe.core.errors import FrozenProgramError, FrozenRunError
from efe.frozen.freeze import FrozenProgram, instantiate
from efe.core.specs import SandboxSpec
from efe.frozen.sandboxed import SandboxedProgram, frozen_limits
from efe.frozen.transformer import coerce_to_schema


class PartitionTransformer:
    """Picklable: the sandbox (or the in-process program) is built lazily, once per worker thread."""

    def __init__(self, frozen: FrozenProgram, sandboxed: bool = True,
                 limits: SandboxSpec | None = None, output_schema: list[dict] | None = None) -> None:
        if frozen.manifest.get("setting") != "tab":
            raise FrozenProgramError("efe.apply applies tabular feature programs")
        self.source = frozen.source
        self.state = frozen.state
        self.input_schema: list[dict] = frozen.manifest.get("input_schema", [])
        self.output_schema = output_schema if output_schema is not None else frozen.manifest.get("output_schema")
        self.sandboxed = sandboxed
        self.limits = limits or frozen_limits()  # conf/apply.yaml, read here (the driver), shipped to workers
        self._local = threading.local()
        self._boxes: list[SandboxedProgram] = []

    def __getstate__(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k not in ("_local", "_boxes")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._local, self._boxes = threading.local(), []

    def __call__(self, frame: pd.DataFrame, where: str = "a partition") -> pd.DataFrame:
        X = coerce_to_schema(frame, self.input_schema, where=where)
        X.index = pd.RangeIndex(len(X))  # transform is index-invariant (gated); a clean index for every engine
        if self.sandboxed:
            out = self._sandbox().transform(X, where)
        else:
            try:
                out = self._program().transform(X, self.state)
            except Exception as exc:  # noqa: BLE001 - the program's own error, in the user's words
                raise FrozenRunError(f"the program failed on {where}: {type(exc).__name__}: {exc}") from exc
        return self.conform(out.reset_index(drop=True), where)

    def in_chunks(self, frame: pd.DataFrame, rows: int, where: str = "a partition") -> pd.DataFrame:
        """``self(frame)`` at most ``rows`` rows per sandbox call, so that one call's size stays bounded."""
        if len(frame) <= rows:
            return self(frame, where)
        return pd.concat([self(frame.iloc[i:i + rows], f"{where} (rows {i}-{min(i + rows, len(frame)) - 1})")
                          for i in range(0, len(frame), rows)], ignore_index=True)

    def conform(self, out: pd.DataFrame, where: str) -> pd.DataFrame:
        """The output in the schema's column order and dtypes, or an error naming the difference."""
        if not self.output_schema:
            return out
        names = [c["name"] for c in self.output_schema]
        if [str(c) for c in out.columns] != names:
            raise FrozenRunError(f"the program produced columns {list(out.columns)} on {where}; "
                               f"the frozen manifest lists {names}")
        for col in self.output_schema:
            if str(out[col["name"]].dtype) != col["dtype"]:
                try:
                    out[col["name"]] = out[col["name"]].astype(col["dtype"])
                except (TypeError, ValueError) as exc:
                    raise FrozenRunError(f"column '{col['name']}' on {where} is {out[col['name']].dtype}, "
                                       f"not {col['dtype']} as when frozen: {exc}") from exc
        return out

    def empty_output(self) -> pd.DataFrame:
        """Zero rows with the output schema (Dask's ``meta``)."""
        return pd.DataFrame({c["name"]: pd.Series([], dtype=c["dtype"]) for c in self.output_schema or []})

    def _sandbox(self) -> SandboxedProgram:
        box = getattr(self._local, "sandbox", None)
        if box is None:
            box = SandboxedProgram(self.source, self.state, self.limits)
            atexit.register(box.close)
            self._local.sandbox = box
            self._boxes.append(box)
        return box

    def _program(self) -> Any:
        program = getattr(self._local, "program", None)
        if program is None:
            program = self._local.program = instantiate(self.source, "build_feature_program")
        return program

    def close(self) -> None:
        """Stop the sandbox workers this copy started (copies on remote workers stop at their exit)."""
        for box in self._boxes:
            box.close()
        self._boxes.clear()
        self._local = threading.local()
