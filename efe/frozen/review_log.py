"""The review log: who approved or rejected which exact frozen program, in a hash chain.

``review_log.jsonl`` sits next to ``manifest.json``. Each entry holds the decision, the reviewer,
a note, the digest of the program it judged (the manifest and every file the manifest lists, as
they are on disk) and the hash of the entry before it; its own hash covers all of that. Editing,
removing or reordering an entry breaks the chain, and an approval holds only for the exact files
it was given on. This module needs nothing above ``efe.frozen.freeze``.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from efe.rundir.paths import frozen_dir_of
from efe.frozen.freeze import FrozenProgramError, load_frozen
from efe.frozen.verify import REVIEW_LOG

LOG_NAME = REVIEW_LOG
DECISIONS = ("approve", "reject")
GENESIS = "0" * 64


class ReviewError(FrozenProgramError):
    """A program may not be used: unreviewed, rejected, changed since its approval, or a broken log."""


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def program_digest(frozen_dir: Path) -> str:
    """One hash for the program as it is now: manifest.json and each file it lists."""
    manifest_bytes = (frozen_dir / "manifest.json").read_bytes()
    parts = [f"manifest.json:{_sha256(manifest_bytes)}"]
    for rel in sorted(json.loads(manifest_bytes).get("files", {})):
        path = frozen_dir / rel
        parts.append(f"{rel}:{_sha256(path.read_bytes()) if path.exists() else 'missing'}")
    return _sha256("\n".join(parts).encode())


def _entry_hash(entry: dict) -> str:
    body = {k: v for k, v in entry.items() if k != "hash"}
    return _sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode())


def _entry_problem(entry: dict) -> str | None:
    """What makes a chained entry unusable (the fields a decision needs, wrongly typed), or None."""
    if entry.get("decision") not in DECISIONS:
        return f"has decision {entry.get('decision')!r}, not one of {', '.join(DECISIONS)}"
    for name in ("reviewer", "time", "program_digest"):
        if not isinstance(entry.get(name), str):
            return f"has no text '{name}'"
    if not isinstance(entry.get("note", ""), str):
        return "has a 'note' that is not text"
    return None


def read_log(frozen_dir: Path) -> list[dict]:
    """The entries, oldest first, after checking the chain; a ReviewError names the first bad entry."""
    path = frozen_dir / LOG_NAME
    if not path.exists():
        return []
    entries, previous = [], GENESIS
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            raise ReviewError(f"review log '{path}' line {number} is not JSON (the log was edited by hand)") from None
        if not isinstance(entry, dict):
            raise ReviewError(f"review log '{path}' line {number} is not a JSON object (the log was edited by "
                              "hand)")
        if entry.get("prev") != previous or entry.get("hash") != _entry_hash(entry):
            raise ReviewError(f"review log '{path}' is broken at entry {number}: it was edited, removed or "
                              "reordered after it was written (hash chain mismatch)")
        wrong = _entry_problem(entry)
        if wrong:  # never skipped: a skipped entry would be a hole in the chain nobody sees
            raise ReviewError(f"review log '{path}' line {number} {wrong} (the log was edited by hand or "
                              "written by another program)")
        entries.append(entry)
        previous = entry["hash"]
    return entries


def record(path: str | Path, decision: str, reviewer: str, note: str = "") -> dict:
    """Append one decision about the program as it is now; returns the entry written."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    if not reviewer.strip():
        raise ReviewError("a review needs the reviewer's name (reviewer=...)")
    frozen_dir = frozen_dir_of(path)
    load_frozen(frozen_dir)  # files that no longer match their manifest cannot be judged
    entries = read_log(frozen_dir)
    entry: dict[str, Any] = {
        "seq": len(entries) + 1, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "decision": decision,
        "reviewer": reviewer.strip(), "note": note, "user": _user(), "program_digest": program_digest(frozen_dir),
        "prev": entries[-1]["hash"] if entries else GENESIS,
    }
    entry["hash"] = _entry_hash(entry)
    with (frozen_dir / LOG_NAME).open("a") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")
    return entry


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user name in some containers
        return "unknown"


@dataclass
class ReviewStatus:
    state: str               # "unreviewed", "approved", "rejected" or "changed"
    entry: dict | None       # the latest decision, if any

    def describe(self) -> str:
        if self.entry is None:
            return "unreviewed"
        e = self.entry
        who = f"{e['decision']}d by {e['reviewer']} on {e['time']}" + (f" ({e['note']})" if e.get("note") else "")
        return f"changed after it was {who}" if self.state == "changed" else who


def review_status(path: str | Path) -> ReviewStatus:
    """The latest decision, and whether the program is still the one it was given on."""
    frozen_dir = frozen_dir_of(path)
    entries = read_log(frozen_dir)
    if not entries:
        return ReviewStatus("unreviewed", None)
    last = entries[-1]
    if last["program_digest"] != program_digest(frozen_dir):
        return ReviewStatus("changed", last)
    return ReviewStatus("approved" if last["decision"] == "approve" else "rejected", last)


def require_approval(path: str | Path) -> None:
    """Raise a ReviewError unless the latest review approved exactly the files there now."""
    status = review_status(path)
    where = frozen_dir_of(path)
    if status.state == "approved":
        return
    if status.state == "unreviewed":
        raise ReviewError(f"'{where}' has not been reviewed: run `python -m efe.review {where}` and approve it, "
                          "or load it with require_review=False")
    if status.state == "rejected":
        raise ReviewError(f"'{where}' was rejected by {status.entry['reviewer']} on {status.entry['time']}"
                          + (f": {status.entry['note']}" if status.entry.get("note") else ""))
    raise ReviewError(f"'{where}' was changed after it was {status.describe()}: its files no longer match the "
                      "approved ones; review it again")
