"""The errors every dataset loader raises: one message that names the problem, no traceback for the user."""

from __future__ import annotations

from efe.core.errors import EfeError


class DatasetError(EfeError):
    """Input data that cannot be used, with a message naming the problem."""


class TimeSeriesError(DatasetError):
    """Time-series input that cannot be used, with a message naming the problem (a ValueError)."""
