"""The one reader and the one appender of the JSON-lines files a run writes while it runs.

Lineage, proposals, the ledger and the memory store are appended to by several processes at
once; a reader may meet a line a crash cut short, or a line that is not an object. Such lines
are skipped (with a warning naming the file and line when ``warn`` is set), never raised. A reader
that needs more than an object passes ``check`` (the entry -> what is wrong with it, or None): an
entry it finds wrong is skipped like a torn line (a hand-edited or older-version store must not end
a run with a traceback far from the line that caused it).
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator

log = logging.getLogger("efe.rundir")


Check = Callable[[dict], "str | None"]


def iter_jsonl(path: str | Path, *, warn: bool = False, check: Check | None = None) -> Iterator[dict]:
    """The objects of a JSON-lines file, in order; a missing file is empty, bad lines are skipped."""
    try:
        data = Path(path).read_bytes()
    except OSError:
        return
    yield from parse_lines(data, path if warn else None, check)


def parse_lines(data: bytes, path: str | Path | None = None, check: Check | None = None) -> Iterator[dict]:
    """The objects in a chunk of JSON lines (bad lines skipped; warned about, naming ``path``, when it is given;
    ``check`` returns what is wrong with an object, and a wrong one is skipped too)."""
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
        if not isinstance(entry, dict):
            if warn:
                log.warning("%s line %d is not a JSON object; skipped", path, number)
            continue
        wrong = check(entry) if check is not None else None
        if wrong:
            if warn:
                log.warning("%s line %d: %s; skipped", path, number, wrong)
            continue
        yield entry


def read_jsonl(path: str | Path, *, warn: bool = False, check: Check | None = None) -> list[dict]:
    """Every object of a JSON-lines file (see :func:`iter_jsonl`)."""
    return list(iter_jsonl(path, warn=warn, check=check))


def append_jsonl(path: str | Path, entry: Any) -> None:
    """One line appended with a single ``write`` on an O_APPEND descriptor: concurrent writers never interleave."""
    line = (json.dumps(entry, default=str) + "\n").encode()
    fd = os.open(Path(path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
