"""The one "was it changed in place?" check of both settings.

The sandbox sends fingerprints (``plain.digest``, the plan's ``digest`` step) of a program's inputs
and state as they were before it ran and after; a value given as it is gets fingerprinted here, so
either side may be a value or its fingerprint. Frames are fingerprinted per column, so a changed
column can be named.
"""

from __future__ import annotations

from typing import Any

from efe.core import plain


def fingerprint(value: Any) -> Any:
    """``plain.digest`` of a value; a fingerprint (a string, or a frame's or series' dict of hashes) as it is."""
    if isinstance(value, str) or (isinstance(value, dict) and "cells" in value):
        return value
    return plain.digest(value)


def changed(before: Any, after: Any) -> list[str] | None:
    """None if ``after`` is ``before`` unchanged; else the changed or added columns of a frame (may be empty)."""
    old, new = fingerprint(before), fingerprint(after)
    if old == new:
        return None
    if isinstance(old, dict) and isinstance(new, dict) and "frame" in old and "frame" in new:
        cells = dict(zip(new["frame"], new["cells"]))
        edited = [c for c, h in zip(old["frame"], old["cells"]) if cells.get(c) != h]
        return edited + [c for c in new["frame"] if c not in old["frame"]]
    return []
