"""Outcome sidecars: the evaluator's latest verdict for a program, keyed by a hash of its source.

Evaluators write them from whichever worker process ran the program; the search's lineage log
reads them. Both sides agree on this file layout only, so neither imports the other.
"""

from __future__ import annotations

import json
from pathlib import Path

from efe.core.feedback_record import FEEDBACK_DIR, FeedbackRecord
from efe.core.programs import code_hash
from efe.rundir.atomic import atomic_write_text


def write_outcome(outcomes_dir: str | Path, code: str, outcome: dict) -> None:
    """Called by evaluators (any process): the latest verdict for this source."""
    atomic_write_text(Path(outcomes_dir) / f"{code_hash(code)}.json", json.dumps(outcome, default=str))


def read_outcome(outcomes_dir: str | Path, code: str) -> dict:
    """The verdict written for this source, or {} when there is none (yet)."""
    try:
        return json.loads((Path(outcomes_dir) / f"{code_hash(code)}.json").read_text())
    except (OSError, ValueError):
        return {}


def write_feedback(outcomes_dir: str | Path, code: str, record: FeedbackRecord) -> None:
    """Called by the evaluator service (any process): the latest feedback for this source."""
    atomic_write_text(Path(outcomes_dir) / FEEDBACK_DIR / f"{code_hash(code)}.json", json.dumps(record.to_dict()))


def read_feedback(outcomes_dir: str | Path | None, code: str | None) -> FeedbackRecord | None:
    """The feedback written for this source, or None (no directory, not evaluated yet, unreadable)."""
    if not outcomes_dir or not code:
        return None
    try:
        data = json.loads((Path(outcomes_dir) / FEEDBACK_DIR / f"{code_hash(code)}.json").read_text())
        return FeedbackRecord.from_dict(data)
    except (OSError, ValueError, TypeError, KeyError):
        return None
