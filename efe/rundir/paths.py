"""Where things are in a run directory, resolved in one place."""

from __future__ import annotations

from pathlib import Path

from efe.core.errors import FrozenProgramError

FROZEN = "frozen"  # the frozen program: program.py, state, manifest.json
MANIFEST = "manifest.json"
LINEAGE = "lineage.jsonl"


def frozen_dir_of(path: str | Path) -> Path:
    """The directory holding manifest.json for a run directory, a package or a frozen directory."""
    p = Path(path).expanduser()
    for candidate in (p / FROZEN, p):
        if (candidate / MANIFEST).exists():
            return candidate
    raise FrozenProgramError(f"'{path}' is neither a run directory, a package nor a frozen program directory "
                             f"(no {MANIFEST} found)")
