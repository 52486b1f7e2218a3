"""On-disk response cache keyed by model + messages + sample index.

The sample index tells apart repeated identical requests within a run (the n-th time this
exact prompt is sent), so re-running a search with the cache replays the same sequence of
responses and makes no new calls. Indices are claimed with exclusive files, which keeps them
unique across openevolve's worker processes.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from efe.rundir.atomic import atomic_write_text


def request_key(model: str, system: str, messages: list[dict]) -> str:
    payload = json.dumps({"model": model, "system": system, "messages": messages}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class ResponseCache:
    def __init__(self, directory: str | Path | None) -> None:
        self.dir = Path(directory).expanduser() if directory else None

    def _path(self, key: str, sample: int) -> Path:
        return self.dir / key[:2] / f"{key}-{sample}.json"

    def get(self, key: str, sample: int) -> dict[str, Any] | None:
        if self.dir is None:
            return None
        path = self._path(key, sample)
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None

    def put(self, key: str, sample: int, entry: dict[str, Any]) -> None:
        if self.dir is None:
            return
        atomic_write_text(self._path(key, sample), json.dumps(entry))
