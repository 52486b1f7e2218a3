"""efe: Evolutionary Feature Engineering.

The public API is small: ``efe.load_program(path)`` returns a frozen program ready to use
(a scikit-learn transformer for tables, a normalization for time series); everything else is
reached through the command lines ``python -m efe.tab`` and ``python -m efe.time``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["load_program"]


def load_program(path: Any, **options: Any) -> Any:
    """See ``efe.transformer.load_program`` (options: ``require_review``)."""
    from efe.transformer import load_program as _load_program

    return _load_program(path, **options)
