"""``proposals.jsonl``: every proposal of a run, with the exact conversation that produced it.

Written by the proposer (``efe.llm.proposal``, in openevolve's worker processes), read by the
lineage recorder (plans, judge rejections), the reports (judge verdicts and cost) and
``python -m efe.traces`` (training data). One line per proposal: ``system``, ``messages`` (the
user prompt, and with plan-first the plan turns), ``response`` (the raw answer), ``plan``,
``code_sha256``, ``parent_sha256`` (the hash of the program in the prompt), ``judge`` (verdict,
tokens, cost; null without a judge) and ``code`` (only for proposals the judge rejected, which
never reach ``programs/``). The prompts hold the dataset context of the training part and pool-A
feedback only, like everything the LLM sees.
"""

from __future__ import annotations

import re
from pathlib import Path

from efe.rundir.jsonl import append_jsonl, parse_lines, read_jsonl

PROPOSALS_FILE = "proposals.jsonl"
_REJECTED = re.compile(r"judge rejected \[(?P<sha>[0-9a-f]{64})\]")
_DUPLICATE = re.compile(r"duplicate rejected \[(?P<sha>[0-9a-f]{64})\]")


def rejection_message(code_sha: str, judge: str, detail: str) -> str:
    """How a judge rejection reads in openevolve's log (and so in the lineage's reason)."""
    return f"judge rejected [{code_sha}] by {judge}: {detail}"[:400]


def rejected_sha(reason: str) -> str | None:
    """The program hash in a rejection message, or None when the reason is something else."""
    match = _REJECTED.search(reason or "")
    return match.group("sha") if match else None


def duplicate_message(code_sha: str, of_sha: str) -> str:
    """How a proposal turned down as a near-duplicate reads in openevolve's log (and the lineage)."""
    return f"duplicate rejected [{code_sha}]: repeats evaluated program {of_sha[:12]} (novelty check)"


def duplicate_sha(reason: str) -> str | None:
    """The program hash in a duplicate rejection, or None when the reason is something else."""
    match = _DUPLICATE.search(reason or "")
    return match.group("sha") if match else None


def append_proposal(run_dir: str | Path, entry: dict) -> None:
    """One line, one O_APPEND write: several worker processes propose at once."""
    append_jsonl(Path(run_dir) / PROPOSALS_FILE, entry)


def read_proposals(run_dir: str | Path) -> list[dict]:
    return read_jsonl(Path(run_dir) / PROPOSALS_FILE)


class ProposalIndex:
    """Plans and proposer roles by program hash, read incrementally from ``proposals.jsonl`` (for the lineage)."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / PROPOSALS_FILE
        self.offset = 0
        self.plans: dict[str, str] = {}
        self.roles: dict[str, str] = {}
        self.duplicate_roles: dict[str, str] = {}   # proposals turned down as near-duplicates

    def _read_new(self) -> None:
        if not self.path.exists():
            return
        with open(self.path, "rb") as fh:
            fh.seek(self.offset)
            data = fh.read()
        end = data.rfind(b"\n") + 1
        self.offset += end
        for entry in parse_lines(data[:end]):
            if entry.get("plan") and entry.get("code_sha256"):
                self.plans.setdefault(entry["code_sha256"], entry["plan"])
            if entry.get("role") and entry.get("code_sha256"):
                into = self.duplicate_roles if entry.get("duplicate_of") else self.roles
                into[entry["code_sha256"]] = entry["role"]

    def plan(self, code_sha: str) -> str | None:
        if code_sha not in self.plans:
            self._read_new()
        return self.plans.get(code_sha)

    def role(self, code_sha: str, duplicate: bool = False) -> str | None:
        """The role of the (latest) proposal of this program (``duplicate``: of one turned down as a repeat)."""
        self._read_new()
        return (self.duplicate_roles if duplicate else self.roles).get(code_sha)
