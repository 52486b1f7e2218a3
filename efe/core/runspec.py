"""The run spec: the JSON file that tells an evaluator what to do (paths, seeds, constants).

openevolve loads evaluator files by path and calls ``evaluate(program_path)``, so the spec's
location travels in an environment variable. The held-out part is never named in it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

SPEC_ENV = "EFE_RUN_SPEC"


def read_spec(path: str | Path | None = None) -> dict[str, Any]:
    if path is None:
        path = os.environ.get(SPEC_ENV)
        if not path:
            raise RuntimeError(f"no run spec: set {SPEC_ENV} to the path of a spec.json "
                               "(efe.tab and efe.score write one into the run directory)")
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"run spec '{p}' does not exist")
    return json.loads(p.read_text())
