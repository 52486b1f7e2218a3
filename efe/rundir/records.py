"""The records a run leaves in its directory, read in one place.

``lineage.jsonl`` holds one entry per candidate (valid or not), appended by the search while it
runs; every reader (selection, reports, plots, traces, memory) reads it through here.
"""

from __future__ import annotations

from pathlib import Path

from efe.rundir.jsonl import read_jsonl


def read_lineage(path: str | Path) -> list[dict]:
    """Entries of ``lineage.jsonl`` (a run directory or the file itself); a torn last line is skipped."""
    p = Path(path)
    if p.is_dir():
        p = p / "lineage.jsonl"
    return read_jsonl(p)
