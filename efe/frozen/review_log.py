"""The review log: who approved or rejected which exact frozen program, in a hash chain.

``review_log.jsonl`` sits next to ``manifest.json``. Each entry holds the decision, the reviewer,
a note, the digest of the program it judged (the manifest and every file the manifest lists, as
they are on disk) and the hash of the entry before it; its own hash covers all of that. Editing,
removing or reordering an entry breaks the chain, and an approval holds only for the exact files
it was given on.

A chain alone cannot show that entries were cut off its end: ``review_anchor.json`` beside it names
the latest entry (its number and hash), and a reader checks the log ends there. Removing the last
entries (a reject after an approval) is then detected, unless the anchor is rewritten too.

With a reviewer key (``review.key_env`` in conf/review.yaml names the environment variable that
holds it), every entry and the anchor carry an HMAC-SHA256 under that key, and a reader with the
key accepts an approval only if its HMAC checks, and the log only if the anchor's does: someone who
can write both files but does not hold the key can neither forge an approval (``record()`` without
the key writes an unsigned one) nor cut the log and rewrite the anchor to match. What it does not
stop: anyone holding the key, and putting back an older copy of both files (an earlier state of the
log, with its anchor). This module needs nothing above ``efe.frozen.freeze``.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from efe.core.config import conf_section
from efe.rundir.atomic import atomic_write_text
from efe.rundir.paths import frozen_dir_of
from efe.frozen.freeze import FrozenProgramError, load_frozen
from efe.frozen.verify import REVIEW_ANCHOR, REVIEW_LOG

LOG_NAME = REVIEW_LOG
ANCHOR_NAME = REVIEW_ANCHOR
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


def _mac(key: bytes, text: str) -> str:
    return hmac.new(key, text.encode(), hashlib.sha256).hexdigest()


def _entry_mac(key: bytes, entry: dict) -> str:
    """The reviewer key's HMAC over the entry (every field but its hash and the HMAC itself)."""
    body = {k: v for k, v in entry.items() if k not in ("hash", "mac")}
    return _mac(key, json.dumps(body, sort_keys=True, separators=(",", ":")))


def review_key(key_env: str | None = None) -> bytes | None:
    """The reviewer key: the environment variable ``key_env`` names (default: conf/review.yaml ``key_env``),
    or None when no variable is named or it is unset/empty."""
    name = conf_section("review").get("key_env") if key_env is None else key_env
    if not name:
        return None
    value = os.environ.get(str(name), "")
    return value.encode() if value else None


def _check_anchor(frozen_dir: Path, entries: list[dict], key: bytes | None) -> None:
    """The log ends at the entry its anchor names (and, with a key, the anchor is the key holder's)."""
    path, log = frozen_dir / ANCHOR_NAME, frozen_dir / LOG_NAME
    if not path.exists():
        if entries:
            raise ReviewError(f"review log '{log}' has no anchor ({ANCHOR_NAME} is missing): its end cannot be "
                              "checked (entries may have been removed); record the review again in a fresh log")
        return
    try:
        anchor = json.loads(path.read_text())
        count, head = int(anchor["entries"]), str(anchor["head"])
    except (ValueError, KeyError, TypeError):
        raise ReviewError(f"review anchor '{path}' is not a valid anchor (edited by hand?)") from None
    actual = (len(entries), entries[-1]["hash"] if entries else GENESIS)
    if (count, head) != actual:
        raise ReviewError(f"review log '{log}' ends at entry {actual[0]} but its anchor names entry {count}: "
                          "entries were removed (or the log replaced) after they were written")
    if key is not None and not hmac.compare_digest(str(anchor.get("mac", "")), _mac(key, f"{count}:{head}")):
        raise ReviewError(f"review anchor '{path}' is not signed with the reviewer key (review.key_env): the "
                          "log's end cannot be trusted")


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


def read_log(frozen_dir: Path, key: bytes | None = None) -> list[dict]:
    """The entries, oldest first, after checking the chain and its anchor; a ReviewError names the first
    problem. ``key``: the reviewer key, if one is configured (the anchor must then carry its HMAC)."""
    entries = _read_chain(frozen_dir)
    _check_anchor(frozen_dir, entries, key)
    return entries


def _read_chain(frozen_dir: Path) -> list[dict]:
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


def record(path: str | Path, decision: str, reviewer: str, note: str = "", key: bytes | None = None) -> dict:
    """Append one decision about the program as it is now, and move the anchor to it; returns the entry.

    ``key``: the reviewer key (``review_key()``): the entry and the anchor then carry its HMAC, and only
    such approvals count where the key is configured."""
    if decision not in DECISIONS:
        raise ReviewError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    if not reviewer.strip():
        raise ReviewError("a review needs the reviewer's name (reviewer=...)")
    frozen_dir = frozen_dir_of(path)
    load_frozen(frozen_dir)  # files that no longer match their manifest cannot be judged
    entries = read_log(frozen_dir, key)
    entry: dict[str, Any] = {
        "seq": len(entries) + 1, "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "decision": decision,
        "reviewer": reviewer.strip(), "note": note, "user": _user(), "program_digest": program_digest(frozen_dir),
        "prev": entries[-1]["hash"] if entries else GENESIS,
    }
    if key is not None:
        entry["mac"] = _entry_mac(key, entry)
    entry["hash"] = _entry_hash(entry)
    with (frozen_dir / LOG_NAME).open("a") as fh:
        fh.write(json.dumps(entry, sort_keys=True) + "\n")
    anchor: dict[str, Any] = {"entries": len(entries) + 1, "head": entry["hash"]}
    if key is not None:
        anchor["mac"] = _mac(key, f"{anchor['entries']}:{anchor['head']}")
    atomic_write_text(frozen_dir / ANCHOR_NAME, json.dumps(anchor, sort_keys=True) + "\n")
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


def review_status(path: str | Path, key: bytes | None = None) -> ReviewStatus:
    """The latest decision, and whether the program is still the one it was given on."""
    frozen_dir = frozen_dir_of(path)
    entries = read_log(frozen_dir, key)
    if not entries:
        return ReviewStatus("unreviewed", None)
    last = entries[-1]
    if last["program_digest"] != program_digest(frozen_dir):
        return ReviewStatus("changed", last)
    return ReviewStatus("approved" if last["decision"] == "approve" else "rejected", last)


def require_approval(path: str | Path, key: bytes | None = None) -> None:
    """Raise a ReviewError unless the latest review approved exactly the files there now (and, with the
    reviewer key, unless that approval and the log's anchor carry its HMAC). ``key`` None: ``review_key()``."""
    key = review_key() if key is None else key
    status = review_status(path, key)
    where = frozen_dir_of(path)
    if status.state == "approved":
        if key is not None and not hmac.compare_digest(str(status.entry.get("mac", "")),
                                                       _entry_mac(key, status.entry)):
            raise ReviewError(f"'{where}' was {status.describe()}, but that approval is not signed with the "
                              "reviewer key (review.key_env): approve it again with the key set")
        return
    if status.state == "unreviewed":
        raise ReviewError(f"'{where}' has not been reviewed: run `python -m efe.review {where}` and approve it, "
                          "or load it with require_review=False")
    if status.state == "rejected":
        raise ReviewError(f"'{where}' was rejected by {status.entry['reviewer']} on {status.entry['time']}"
                          + (f": {status.entry['note']}" if status.entry.get("note") else ""))
    raise ReviewError(f"'{where}' was changed after it was {status.describe()}: its files no longer match the "
                      "approved ones; review it again")
