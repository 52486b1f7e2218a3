"""Freezing a winner: reviewable source, plainly serialised state, a manifest of hashes.

A frozen directory depends on nothing from the search: ``program.py``, ``state.json`` with
its arrays (.npy) and tables (.parquet), and ``manifest.json`` (hashes, input schema,
library versions, scores). Loading it never unpickles anything, and refuses files whose
hashes do not match the manifest.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy
import pandas as pd
import pyarrow

from efe.core import plain
from efe.frozen.verify import FrozenProgramError, verify_files, verify_program

FORMAT_VERSION = 1


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "numpy": numpy.__version__,
                "pandas": pd.__version__, "pyarrow": pyarrow.__version__}
    try:
        versions["efe"] = version("efe")
    except Exception:  # noqa: BLE001 - running from a checkout
        versions["efe"] = "unknown"
    return versions


def input_schema(X: pd.DataFrame) -> list[dict]:
    return [{"name": str(c), "dtype": str(X[c].dtype)} for c in X.columns]


def freeze(directory: str | Path, setting: str, source: str, state: Any, *,
           schema: list[dict] | None = None, output_columns: list[str] | None = None,
           extra: dict | None = None) -> Path:
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "program.py").write_text(source)
    files = plain.dump_dir(state, directory, "state")
    manifest = {
        "format_version": FORMAT_VERSION,
        "setting": setting,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "files": {str(p.relative_to(directory)): _sha256(p) for p in [directory / "program.py", *files]},
        "input_schema": schema or [],
        "output_columns": output_columns or [],
        "libraries": library_versions(),
        **(extra or {}),
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    return directory


@dataclass
class FrozenProgram:
    directory: Path
    source: str
    state: Any
    manifest: dict


def load_frozen(directory: str | Path) -> FrozenProgram:
    directory = Path(directory)
    manifest_path = directory / "manifest.json"
    if not manifest_path.exists():
        raise FrozenProgramError(f"'{directory}' is not a frozen program (no manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text())
    except ValueError as exc:
        raise FrozenProgramError(f"manifest.json in '{directory}' is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise FrozenProgramError(f"manifest.json in '{directory}' is not a JSON object")
    try:
        source = verify_files(directory, manifest).decode("utf-8")  # the bytes hashed, not a second read
    except UnicodeDecodeError:
        raise FrozenProgramError(f"program.py in '{directory}' is not UTF-8 text") from None
    verify_program(directory, source)  # before anything executes or unpacks the state
    return FrozenProgram(directory, source, plain.load_dir(directory, "state"), manifest)


def instantiate(source: str, factory: str, seed: int = 0) -> Any:
    """Build the program object in this process. Only for reviewed, frozen programs."""
    namespace: dict[str, Any] = {"__name__": "efe_frozen_program"}
    exec(compile(source, "<efe-frozen-program>", "exec"), namespace)  # noqa: S102 - reviewed code
    return namespace[factory](seed)
