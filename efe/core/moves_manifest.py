"""The ``# efe-moves:`` manifest: the move list an offline-proposer program carries in one comment line.

Written by the move libraries (``efe.proposer.tab_moves``, ``efe.proposer.time_moves``) and read back by them, by the
novelty check, by the rules memory and by the cross-run memory. The line is parsed here only, so every
reader agrees on what a manifest is: the first line starting (after spaces or tabs) with the marker,
then a JSON list of entries (tab: ``[kind, columns, params]``; time: ``[kind, params]``).
"""

from __future__ import annotations

import json
import re
from typing import Any

MANIFEST = "# efe-moves:"
_LINE = re.compile(r"^[ \t]*" + re.escape(MANIFEST) + r"[ \t]*(.*)$", re.M)


def manifest_line(entries: list) -> str:
    """The manifest comment for these entries."""
    return f"{MANIFEST} {json.dumps(entries)}"


def manifest_text(source: str | None) -> str | None:
    """The text after the marker on the first manifest line (stripped); None without a manifest."""
    match = _LINE.search(source or "")
    return match.group(1).strip() if match else None


def read_manifest(source: str | None) -> Any | None:
    """The manifest's decoded JSON; None without a manifest or when it is not JSON.

    Callers check the entries' shape: each library knows its own.
    """
    text = manifest_text(source)
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def manifest_keys(source: str | None) -> set[str] | None:
    """``kind(arg, ...)`` of every move in the manifest (the name the memory rules use); None without one.

    The arguments are an entry's second item: the columns of a tabular move, the parameters of a
    time-series move.
    """
    entries = read_manifest(source)
    if entries is None:
        return None
    keys = set()
    for entry in entries:
        if not isinstance(entry, list) or not entry:
            continue
        args = entry[1] if len(entry) > 1 else []
        keys.add(f"{entry[0]}({', '.join(str(a) for a in args)})")
    return keys
