"""Static first filter for program source: allowed imports, no dunder access, no I/O names.

This is not the security boundary (see ``guard``); it rejects the obvious early, with the
construct and line number, so the LLM gets a precise reason instead of a killed process.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

ALLOWED_MODULES = frozenset({
    "numpy", "pandas", "math", "statistics", "itertools", "functools", "collections", "re",
    "typing", "__future__",
})
ALLOWED_SUBMODULES = {"scipy": frozenset({"special", "stats"})}
ALLOWED_DUNDER_ATTRIBUTES = frozenset({"__init__"})
FORBIDDEN_NAMES = frozenset({
    "eval", "exec", "compile", "open", "input", "breakpoint", "globals", "locals", "vars",
    "help", "exit", "quit", "memoryview",
})
FORBIDDEN_ATTRIBUTES = frozenset({
    "os", "sys", "subprocess", "builtins", "ctypes", "importlib", "system", "popen", "spawn",
    "fork", "execv", "execve", "_getframe", "f_globals", "f_locals", "f_back", "f_builtins",
    "gi_frame", "cr_frame", "ag_frame", "tb_frame", "co_code", "modules", "read_pickle",
    "to_pickle", "load", "loadtxt", "fromfile", "tofile", "save", "savez", "memmap",
})


@dataclass(frozen=True)
class Violation:
    construct: str
    line: int
    col: int = 0

    def __str__(self) -> str:
        return f"{self.construct} (line {self.line})"


def import_allowed(name: str, fromlist: tuple = ()) -> bool:
    """Shared by the AST gate and the run-time ``__import__`` guard."""
    parts = name.split(".")
    root = parts[0]
    if root in ALLOWED_MODULES:
        return True
    if root in ALLOWED_SUBMODULES:
        subs = ALLOWED_SUBMODULES[root]
        if len(parts) > 1:
            return parts[1] in subs
        return bool(fromlist) and all(f in subs for f in fromlist)
    return False


def allowed_imports_text() -> str:
    subs = [f"{root}.{s}" for root, names in ALLOWED_SUBMODULES.items() for s in sorted(names)]
    return ", ".join(sorted(ALLOWED_MODULES - {"__future__"}) + subs)


def find_violations(tree: ast.AST) -> list[Violation]:
    """Every forbidden construct in the module, in source order."""
    found: list[Violation] = []
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 0)
        col = getattr(node, "end_col_offset", 0) or 0
        if isinstance(node, ast.Import):
            for alias in node.names:
                if not import_allowed(alias.name):
                    found.append(Violation(f"import of '{alias.name}' is not allowed "
                                           f"(allowed: {allowed_imports_text()})", line, col))
        elif isinstance(node, ast.ImportFrom):
            module = node.module or ""
            names = tuple(a.name for a in node.names)
            if node.level or not import_allowed(module, names):
                shown = "." * node.level + module
                found.append(Violation(f"import from '{shown}' is not allowed "
                                       f"(allowed: {allowed_imports_text()})", line, col))
        elif isinstance(node, ast.Attribute):
            attr = node.attr
            if attr.startswith("__") and attr not in ALLOWED_DUNDER_ATTRIBUTES:
                found.append(Violation(f"access to dunder attribute '{attr}'", line, col))
            elif attr in FORBIDDEN_ATTRIBUTES:
                found.append(Violation(f"access to attribute '{attr}'", line, col))
        elif isinstance(node, ast.Name):
            if node.id.startswith("__") and node.id.endswith("__"):
                found.append(Violation(f"use of dunder name '{node.id}'", line, col))
            elif node.id in FORBIDDEN_NAMES:
                found.append(Violation(f"use of '{node.id}'", line, col))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            if node.func.id in ("getattr", "setattr", "delattr", "hasattr") and len(node.args) > 1:
                arg = node.args[1]
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    if arg.value.startswith("__") or arg.value in FORBIDDEN_ATTRIBUTES:
                        found.append(Violation(f"{node.func.id}() of '{arg.value}'", line, col))
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            continue
    found.sort(key=lambda v: (v.line, v.col))
    return found
