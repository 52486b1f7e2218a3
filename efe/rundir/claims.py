"""Claims shared by the processes of one run: the n-th holder of a key gets n, exactly once."""

from __future__ import annotations

import os
from pathlib import Path


def claim_index(claims_dir: Path, key: str) -> int:
    """The lowest index not yet claimed for ``key``, claimed with an exclusive file (unique across processes)."""
    claims_dir.mkdir(parents=True, exist_ok=True)
    i = 0
    while True:
        try:
            os.close(os.open(claims_dir / f"{key[:32]}-{i}", os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return i
        except FileExistsError:
            i += 1
