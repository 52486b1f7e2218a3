"""Checks a frozen directory must pass before any of its code or state is used.

The manifest's hashes catch files changed after freezing by anything that did not also rewrite
``manifest.json`` (a careless edit, a partial copy, disk corruption, a swapped state file). They
cannot stop someone who can write the directory: they can rewrite the manifest too. What stops
hostile code then is the sandbox's static policy check, run here before anything executes, and
``sandboxed=True`` (or ``python -m efe.apply``), which runs the program in the sandbox.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from efe.core.errors import FrozenProgramError
from efe.sandbox import check_source

PROGRAM = "program.py"
MANIFEST = "manifest.json"
# The review record about these files (efe.frozen.review_log): written after freezing, so the manifest
# cannot list it; it carries its own hash chain over the manifest and every listed file.
__all__ = ["FrozenProgramError", "FrozenIntegrityError"]  # FrozenProgramError lives in efe.core.errors

REVIEW_LOG = "review_log.jsonl"
REVIEW_ANCHOR = "review_anchor.json"  # names the log's latest entry (efe.frozen.review_log)


class FrozenIntegrityError(FrozenProgramError):
    """A frozen directory whose files do not match its manifest, or whose program fails the policy."""


def verify_files(directory: Path, manifest: dict) -> bytes:
    """Every file on disk is listed with a matching hash, and ``program.py`` is among them; returns the
    bytes of ``program.py`` that were hashed (the caller runs those, not a second read of the file).

    The manifest cannot opt a file out: an unlisted file (program.py included) is refused, as
    is a listed path that leaves the directory.
    """
    listed = manifest.get("files")
    if not isinstance(listed, dict) or not all(isinstance(v, str) for v in listed.values()):
        raise FrozenIntegrityError(f"manifest.json in '{directory}' has no valid 'files' table of hashes")
    if PROGRAM not in listed:
        raise FrozenIntegrityError(f"manifest.json in '{directory}' does not list {PROGRAM}: refusing to load "
                                   "a program whose source is not hash-checked")
    root = directory.resolve()
    program = b""
    for rel, digest in listed.items():
        path = (root / rel).resolve()
        if root not in path.parents:
            raise FrozenIntegrityError(f"manifest.json in '{directory}' lists '{rel}', outside the frozen directory")
        if not path.is_file():
            raise FrozenIntegrityError(f"frozen program file '{rel}' is missing from '{directory}'")
        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise FrozenIntegrityError(f"'{rel}' in '{directory}' does not match its hash in manifest.json "
                                       "(edited after freezing?)")
        if rel == PROGRAM:
            program = data
    listed_paths = {(root / rel).resolve() for rel in listed}
    unlisted = sorted(str(p.relative_to(root)) for p in root.rglob("*")
                      if p.is_file() and p.relative_to(root).as_posix() not in (MANIFEST, REVIEW_LOG, REVIEW_ANCHOR)
                      and p.resolve() not in listed_paths)
    if unlisted:
        shown = ", ".join(unlisted[:5]) + (" …" if len(unlisted) > 5 else "")
        raise FrozenIntegrityError(f"'{directory}' holds files manifest.json does not list ({shown}): "
                                   "refusing to load (remove them or re-freeze)")
    return program


def verify_program(directory: Path, source: str) -> None:
    """The sandbox's static policy check (imports, dunders, I/O names) on the frozen source."""
    failure = check_source(source)
    if failure is not None:
        raise FrozenIntegrityError(f"{PROGRAM} in '{directory}' fails the sandbox's static check: {failure.reason}")
