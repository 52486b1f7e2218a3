"""Parsing Python source into an AST, one thread at a time.

CPython 3.11 keeps the AST constructor's recursion counter per interpreter, not per thread: two
threads building ASTs at once (final selection checks finalists on a thread pool) can fail with
``SystemError: AST constructor recursion depth mismatch`` (python/cpython gh-106905), which a
run then reports as a crash. A lock around ``ast.parse`` costs nothing next to what follows it.
"""

from __future__ import annotations

import ast
import threading

_PARSING = threading.Lock()


def parse_python(source: str) -> ast.Module:
    """``ast.parse(source)``, never concurrently with another thread's; raises ``SyntaxError`` as it does."""
    with _PARSING:
        return ast.parse(source)
