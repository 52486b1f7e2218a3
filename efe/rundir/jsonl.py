"""The one reader and the one appender of the JSON-lines files a run writes while it runs.

Lineage, proposals, the ledger and the memory store are appended to by several processes at
once; a reader may meet a line a crash cut short, or a line that is not an object. Such lines
are skipped (with a warning naming the file and line when ``warn`` is set), never raised.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator

log = logging.getLogger("efe.rundir")


def iter_jsonl(path: str | Path, *, warn: bool = False) -> Iterator[dict]:
    """The objects of a JSON-lines file, in order; a missing file is empty, bad lines are skipped."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return
    yield from parse_lines(data, path if warn else None)


def parse_lines(data: bytes, path: str | Path | None = None) -> Iterator[dict]:
    """The objects in a chunk of JSON lines (bad lines skipped; warned about, naming ``path``, when it is given)."""
    warn = path is not None
    for number, line in enumerate(data.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            if warn:
                log.warning("%s line %d is not JSON (a torn or hand-edited line); skipped", path, number)
            continue
        if isinstance(entry, dict):
            yield entry
        elif warn:
            log.warning("%s line %d is not a JSON object; skipped", path, number)


def read_jsonl(path: str | Path, *, warn: bool = False) -> list[dict]:
    """Every object of a JSON-lines file (see :func:`iter_jsonl`)."""
    return list(iter_jsonl(path, warn=warn))


def append_jsonl(path: str | Path, entry: Any) -> None:
    """One line appended with a single ``write`` on an O_APPEND descriptor: concurrent writers never interleave."""
    line = (json.dumps(entry, default=str) + "\n").encode()
    fd = os.open(Path(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
