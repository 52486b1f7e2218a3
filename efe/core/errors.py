"""The one base of every error efe raises in the user's words.

A command line catches ``EfeError`` alone, prints its message as one line and exits 2; anything
else is a bug and keeps its traceback. It is a ``ValueError`` so that callers written against the
older, per-module errors keep catching them.
"""

from __future__ import annotations


class EfeError(ValueError):
    """A problem the user can fix (bad input, configuration, a refused path), named in one line."""


class FrozenProgramError(EfeError):
    """A frozen directory that cannot be used (re-exported by ``efe.frozen.freeze`` and ``efe.frozen.verify``)."""


class FrozenInputError(EfeError):
    """Rows a frozen program cannot take: a column missing, or of another kind than when frozen."""


class FrozenRunError(EfeError, RuntimeError):
    """A frozen program that failed on given rows, or whose output is not the frozen schema (also a RuntimeError)."""
