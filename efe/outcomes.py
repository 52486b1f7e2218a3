"""Outcome sidecars: the evaluator's latest verdict for a program, keyed by a hash of its source.

Evaluators write them from whichever worker process ran the program; the search's lineage log
reads them. Both sides agree on this file layout only, so neither imports the other.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from efe.programs import code_hash


def write_outcome(outcomes_dir: str | Path, code: str, outcome: dict) -> None:
    """Called by evaluators (any process): the latest verdict for this source."""
    directory = Path(outcomes_dir)
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{code_hash(code)}.json"
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(outcome, default=str))
    tmp.replace(path)


def read_outcome(outcomes_dir: str | Path, code: str) -> dict:
    """The verdict written for this source, or {} when there is none (yet)."""
    try:
        return json.loads((Path(outcomes_dir) / f"{code_hash(code)}.json").read_text())
    except (OSError, ValueError):
        return {}
