"""On-disk response cache keyed by model + messages + sample index.

The sample index tells apart repeated identical requests within a run (the n-th time this
exact prompt is sent), so re-running a search with the cache replays the same sequence of
responses and makes no new calls. Indices are claimed with exclusive files, which keeps them
unique across openevolve's worker processes. An entry that is not what ``put`` writes (a hand-edited
file, another version's) is a miss, with a warning naming the file: the call is made again.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from efe.rundir.atomic import atomic_write_text

log = logging.getLogger("efe.llm.cache")


def request_key(model: str, system: str, messages: list[dict]) -> str:
    payload = json.dumps({"model": model, "system": system, "messages": messages}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def entry_problem(entry: Any) -> str | None:
    """What makes a cache entry unusable (not what ``put`` writes), or None."""
    if not isinstance(entry, dict):
        return f"is not a JSON object (it is {type(entry).__name__})"
    if not isinstance(entry.get("response"), str):
        return "has no text 'response'"
    usage = entry.get("usage", {})
    if not isinstance(usage, dict):
        return "has a 'usage' that is not an object"
    for name in ("prompt_tokens", "completion_tokens"):
        value = usage.get(name, 0)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return f"has a 'usage.{name}' that is not a count"
    return None


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
            text = path.read_text()
        except OSError:
            return None
        try:
            entry = json.loads(text)
        except ValueError:
            entry, wrong = None, "is not JSON"
        else:
            wrong = entry_problem(entry)
        if wrong:
            log.warning("response cache entry %s %s; ignored (the call is made again)", path, wrong)
            return None
        return entry

    def put(self, key: str, sample: int, entry: dict[str, Any]) -> None:
        if self.dir is None:
            return
        atomic_write_text(self._path(key, sample), json.dumps(entry))
