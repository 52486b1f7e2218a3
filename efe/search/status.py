"""How a search ended (finished, stopped by budget, stopped by LLM or infrastructure failures, interrupted).

Recorded in ``<run>/status.json`` by the search; the command line turns it into its exit status
and the reports show it.
"""

from __future__ import annotations

import json
from pathlib import Path

from efe.llm.ledger import LLM_FAILURE_PREFIX

# How a search ended, and the exit status of the command line for it.
EXIT_STATUS = {"finished": 0, "stopped by budget": 3, "stopped by LLM failures": 4,
               "stopped by infrastructure failures": 5, "interrupted": 130}
STATUS_FILE = "status.json"
# The circuit breakers: a stop reason starting with the prefix is a search stopped by those failures.
INFRA_FAILURE_PREFIX = "Ray executor failing"
BREAKERS = {LLM_FAILURE_PREFIX: "stopped by LLM failures", INFRA_FAILURE_PREFIX: "stopped by infrastructure failures"}


def search_status(stop_reason: str) -> str:
    if stop_reason == "completed":
        return "finished"
    if stop_reason == "interrupted":
        return "interrupted"
    for prefix, status in BREAKERS.items():
        if stop_reason.startswith(prefix):
            return status
    return "stopped by budget"


def exit_status(run_dir: Path) -> int:
    """The exit status for the search recorded in ``run_dir`` (0 when none was recorded)."""
    try:
        return EXIT_STATUS.get(json.loads((Path(run_dir) / STATUS_FILE).read_text()).get("status"), 0)
    except (OSError, ValueError):
        return 0


def determinism(executor: dict, backend: str) -> dict:
    """Whether the same command with the same seed gives this run's lineage and frozen program again,
    and why (report.json's ``search.deterministic`` and ``search.determinism``)."""
    if not executor.get("deterministic"):
        return {"deterministic": False,
                "determinism": "no (evolution.deterministic=false: parallel evaluations finish in any order; "
                               "rerun with evolution.deterministic=true to reproduce a run)"}
    if backend not in ("offline", "replay"):
        return {"deterministic": False,
                "determinism": f"no (evolution.deterministic=true, but the {backend} LLM's answers are not "
                               "reproducible)"}
    return {"deterministic": True,
            "determinism": "yes (evolution.deterministic=true: one evaluation at a time, proposals seeded from "
                           "the run's seed; the same command gives the same lineage and frozen program)"}
