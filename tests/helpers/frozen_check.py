"""Checking that a frozen program reproduces, outside the search, what the search measured."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from efe.core.contracts import TAB
from efe.datasets.split import read_train
from efe.frozen.freeze import instantiate, load_frozen
from efe.sandbox import Sandbox, SandboxFailure
from efe.core.specs import load_spec


def reload_and_transform(run_dir: str | Path, X: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(transform by the reloaded frozen program in this process, transform refitted in the sandbox)."""
    run_dir = Path(run_dir)
    frozen = load_frozen(run_dir / "frozen")
    program = instantiate(frozen.source, TAB.factory)
    reproduced = program.transform(X.copy(), frozen.state)
    spec = load_spec(run_dir / "spec.json")
    X_train, y_train = read_train(spec.train_path, spec.target)
    plan = [{"op": "fit", "args": ["X", "y"], "out": "state"},
            {"op": "transform", "args": ["X_new", "state"], "out": "T"}]
    with Sandbox(spec.sandbox) as sandbox:
        result = sandbox.run(frozen.source, "tab", plan, ["T"], values={"X": X_train, "y": y_train, "X_new": X})
    if isinstance(result, SandboxFailure):
        raise RuntimeError(result.reason)
    return reproduced, result.outputs["T"]
