"""Novelty before evaluation: a proposal that repeats an evaluated program is turned down unrun.

Two programs are the same when their normalised sources agree (comments, docstrings, blank lines
and formatting removed: ``ast.unparse`` of the parsed code) or when they carry the same move list
(the offline proposer's ``# efe-moves:`` manifest). The evaluated programs are the files the
lineage keeps in ``programs/`` (one per evaluated program, the seed included), and the proposals still
in flight: parallel iterations propose before their siblings are evaluated, so each accepted proposal
claims its keys in ``novelty_claims/`` (one file per key, created atomically, shared by the worker
processes); a second proposal of the same program is turned down while the first is being evaluated.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import shutil
from pathlib import Path

from efe.core.moves_manifest import manifest_text
from efe.core.pysource import parse_python

_COMMENT = re.compile(r"#[^\n]*")
CLAIMS_DIR = "novelty_claims"


def _strip_docstrings(tree: ast.AST) -> None:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(getattr(body[0], "value", None), ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]


def normalised_source(code: str) -> str:
    """The program without comments, docstrings and formatting (text-level fallback on a syntax error)."""
    try:
        tree = parse_python(code)
    except SyntaxError:
        return "\n".join(line.strip() for line in _COMMENT.sub("", code).splitlines() if line.strip())
    _strip_docstrings(tree)
    return ast.unparse(tree)


def novelty_keys(code: str) -> set[str]:
    """What identifies a program for the duplicate check: its normalised source and its move list."""
    keys = {"src:" + hashlib.sha256(normalised_source(code).encode()).hexdigest()}
    moves = manifest_text(code)
    if moves:
        keys.add("moves:" + hashlib.sha256(moves.encode()).hexdigest())
    return keys


class NoveltyIndex:
    """The keys of every program evaluated so far in a run, read incrementally from ``programs/``."""

    def __init__(self, run_dir: str | Path) -> None:
        self.programs = Path(run_dir) / "programs"
        self.claims = Path(run_dir) / CLAIMS_DIR
        self.keys: dict[str, str] = {}     # key -> file stem (the program's hash)
        self.read: set[str] = set()

    def refresh(self) -> None:
        if not self.programs.exists():
            return
        for path in self.programs.glob("*.py"):
            if path.name in self.read:
                continue
            try:
                code = path.read_text()
            except OSError:
                continue
            self.read.add(path.name)
            for key in novelty_keys(code):
                self.keys.setdefault(key, path.stem)

    def duplicate_of(self, code: str) -> str | None:
        """The hash of an evaluated program this one repeats, or None when it is new."""
        self.refresh()
        for key in sorted(novelty_keys(code)):
            if key in self.keys:
                return self.keys[key]
        return None

    def claim(self, code: str, sha: str) -> str | None:
        """Claim this proposal's keys for the run: None when the claim succeeded, else the hash of the
        in-flight proposal that already holds one of them (this one then holds nothing)."""
        self.claims.mkdir(parents=True, exist_ok=True)
        made: list[Path] = []
        for key in sorted(novelty_keys(code)):
            path = self.claims / key.replace(":", "_")
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                for mine in made:
                    mine.unlink(missing_ok=True)
                try:
                    return path.read_text().strip() or "in-flight"
                except OSError:
                    return "in-flight"
            with os.fdopen(fd, "w") as fh:
                fh.write(sha)
            made.append(path)
        return None


def clear_claims(run_dir: str | Path) -> None:
    """Forget in-flight claims: at the start of a run (or a resume) nothing is in flight, and a
    proposal lost to a kill must be allowed again."""
    shutil.rmtree(Path(run_dir) / CLAIMS_DIR, ignore_errors=True)
