"""Count the imports inside function bodies, per file (the import graph they hide).

Module-level imports, ``if TYPE_CHECKING:`` blocks and module-level ``try: import x / except
ImportError`` are not counted: only imports that run when a function is called. With
``--uncommented`` only those without a ``# lazy: <why>`` comment (on the line, or above its block
of imports).

    python scripts/count_imports.py [--uncommented] [paths ...]   # default: efe evaluators
"""

from __future__ import annotations

import argparse
import ast
import sys
from pathlib import Path
from typing import Iterator

LAZY_MARK = "# lazy:"


def function_imports(source: str) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement nested in a function or method body (at any depth)."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            for inner in ast.walk(node):
                if isinstance(inner, (ast.Import, ast.ImportFrom)):
                    yield inner


def has_lazy_comment(lines: list[str], node: ast.stmt) -> bool:
    """A ``# lazy:`` comment on the import's line, or on the line above its block of imports.

    One comment may cover a block of consecutive imports: the lines above the import are walked
    up while they are imports or comments; the first other line (``try:``) may carry it too.
    """
    i = node.lineno - 1
    while i >= 0:
        line = lines[i].strip()
        if LAZY_MARK in line:
            return True
        if not line.startswith(("import ", "from ", "#")):
            return False
        i -= 1
    return False


def count(paths: list[Path], uncommented: bool = False) -> dict[str, list[int]]:
    """{file: [line numbers of function-level imports]} (deduplicated: nested functions walk twice)."""
    found: dict[str, list[int]] = {}
    for root in paths:
        files = [root] if root.is_file() else sorted(root.rglob("*.py"))
        for f in files:
            source = f.read_text()
            lines = source.splitlines()
            hits = sorted({n.lineno for n in function_imports(source)
                           if not (uncommented and has_lazy_comment(lines, n))})
            if hits:
                found[str(f)] = hits
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=["efe", "evaluators"])
    parser.add_argument("--uncommented", action="store_true", help="only those without a '# lazy:' comment")
    args = parser.parse_args(argv)
    found = count([Path(p) for p in args.paths], args.uncommented)
    for f, lines in found.items():
        print(f"{len(lines):4d}  {f}  (lines {', '.join(map(str, lines))})")
    print(f"total function-level imports: {sum(len(v) for v in found.values())} in {len(found)} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
