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
from pathlib import Path
from typing import Any

import pandas as pd

from efe import plain

FORMAT_VERSION = 1


class FrozenProgramError(ValueError):
    pass


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def library_versions() -> dict[str, str]:
    import numpy
    import pyarrow

    versions = {"python": platform.python_version(), "numpy": numpy.__version__,
                "pandas": pd.__version__, "pyarrow": pyarrow.__version__}
    try:
        from importlib.metadata import version

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
    manifest = json.loads(manifest_path.read_text())
    for rel, digest in manifest.get("files", {}).items():
        path = directory / rel
        if not path.exists():
            raise FrozenProgramError(f"frozen program file '{rel}' is missing from '{directory}'")
        if _sha256(path) != digest:
            raise FrozenProgramError(f"'{rel}' in '{directory}' does not match its hash in manifest.json "
                                     "(edited after freezing?)")
    return FrozenProgram(directory, (directory / "program.py").read_text(), plain.load_dir(directory, "state"),
                         manifest)


def instantiate(source: str, factory: str, seed: int = 0) -> Any:
    """Build the program object in this process. Only for reviewed, frozen programs."""
    namespace: dict[str, Any] = {"__name__": "efe_frozen_program"}
    exec(compile(source, "<efe-frozen-program>", "exec"), namespace)  # noqa: S102 - reviewed code
    return namespace[factory](seed)
