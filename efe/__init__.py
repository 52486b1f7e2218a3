"""efe: Evolutionary Feature Engineering.

The public API is small: ``efe.load_program(path, refit=False)`` returns a frozen program ready to use
(a scikit-learn transformer for tables, a normalization for time series); everything else is
reached through the command lines ``python -m efe.tab`` and ``python -m efe.time``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_program"]


def load_program(path: Any, refit: bool = False, sandboxed: bool = True, require_review: bool = False,
                 require_isolation: bool | None = None) -> Any:
    """A frozen program, ready to use (see ``efe.frozen.transformer.load_program``): ``refit=True`` re-learns its
    state on the data given to ``fit``; ``sandboxed=True`` (default) runs all of its code in the sandbox, never in
    this process, and ``sandboxed=False`` is the explicit choice to trust the directory and run it here (after
    the hash and policy checks); ``require_review=True`` refuses a program nobody approved with
    ``python -m efe.review`` (or whose review log was cut short); ``require_isolation=True`` refuses to run it
    where the kernel gives the sandbox no isolation (None: conf/apply.yaml ``sandbox_limits.require_isolation``)."""
    # lazy: every ``import efe.<module>`` runs this file; efe.frozen.transformer pulls scikit-learn and pyarrow
    from efe.frozen.transformer import load_program as _load_program

    return _load_program(path, refit=refit, sandboxed=sandboxed, require_review=require_review,
                         require_isolation=require_isolation)
