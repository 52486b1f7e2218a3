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
