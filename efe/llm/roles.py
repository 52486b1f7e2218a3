"""Proposer roles in the prompt: the role's instructions and a ``### role`` section naming it.

The run layer lists a setting's roles in the run spec (``roles``); ``Steering`` picks the role of
each proposal with the router (``efe.llm.router``), appends the role's prompt
(``efe/prompts/roles/<setting>/<role>.txt``) and the memory rules (``efe.llm.memory``) to the user
message. The offline proposer reads the same sections back (``role_of``), so both paths share the
roles.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path

from efe.llm.cache import claim_sample_index
from efe.llm.memory import RuleBook, bounded, render_rules
from efe.llm.router import choose_role, read_jsonl, role_stats
from efe.programs import prompt_parts

ROLE_SECTION = "role"
ROLE_PROMPTS = Path(__file__).resolve().parent.parent / "prompts" / "roles"


def role_prompt(setting: str, role: str) -> str:
    path = ROLE_PROMPTS / setting / f"{role}.txt"
    if not path.exists():
        known = sorted(p.stem for p in (ROLE_PROMPTS / setting).glob("*.txt"))
        raise ValueError(f"no prompt for proposer role {role!r} of setting {setting!r} (known: {', '.join(known)})")
    return path.read_text().strip()


def render_role(setting: str, role: str) -> str:
    return (f"\n\n# Your role this iteration: {role}\n{role_prompt(setting, role)}\n"
            f"Make a change of this kind (or undo one that did not pay).\n\n### {ROLE_SECTION}\n```\n{role}\n```\n")


def role_of(prompt: str) -> str | None:
    """The role named in a rendered prompt (None for a prompt without one)."""
    return (prompt_parts(prompt)[1].get(ROLE_SECTION) or "").strip() or None


class Steering:
    """Role and memory for each proposal of a run, from its spec and its lineage so far."""

    def __init__(self, spec: dict) -> None:
        roles = spec.get("roles") or {}
        memory = spec.get("memory") or {}
        self.run_dir = Path(spec["run_dir"])
        self.setting = str(roles.get("setting") or spec.get("setting") or "tab")
        self.names = [str(r) for r in roles.get("names") or []]
        self.router = str(roles.get("router") or "ucb")
        self.exploration = float(roles.get("exploration", 1.0))
        self.cost_weight = float(roles.get("cost_weight", 0.0))
        self.seed = int(spec.get("seed", 0))
        self.max_rules = int(memory.get("max_rules", 12))
        self.rules_in_prompt = bool(memory.get("rules_in_prompt", True))
        self.earlier_rules = list(memory.get("rules") or [])
        self.rulebook = RuleBook(self.run_dir, self.max_rules)

    @property
    def enabled(self) -> bool:
        return bool(self.names)

    def _ticket(self) -> int:
        """A number no other proposal of this run (in any worker process) has drawn."""
        return claim_sample_index(self.run_dir / "router_tickets", "ticket")

    def steer(self, prompt: str, exclude: frozenset[str] = frozenset()) -> tuple[str, str | None]:
        """(the prompt with role and memory sections, the role) for one proposal; ``exclude``: roles
        whose proposal was just turned down as a duplicate (none left: the generic proposer)."""
        names = [n for n in self.names if n not in exclude]
        if not names and not self.rules_in_prompt:
            return prompt, None
        lineage = read_jsonl(self.run_dir / "lineage.jsonl")
        role = None
        if names:
            # a ticket per proposal: workers asking at the same moment, with the same lineage, still draw apart
            digest = hashlib.sha256(f"{self.seed}|{self._ticket()}|{len(lineage)}|{prompt}".encode()).hexdigest()
            rng = random.Random(int(digest[:16], 16))
            # the lineage alone (not proposals still in flight) decides, so a re-run asks the same prompts
            # and a response cache answers them
            role = choose_role(self.router, names, role_stats(lineage, names), rng,
                               self.exploration, self.cost_weight)
            prompt += render_role(self.setting, role)
        if self.rules_in_prompt:
            own = self.rulebook.distill(lineage)
            seen = {(r["verdict"], r["change"]) for r in own}
            earlier = [{**r, "source": "earlier run"} for r in self.earlier_rules
                       if (r.get("verdict"), r.get("change")) not in seen]
            prompt += render_rules(own + bounded(earlier, max(self.max_rules - len(own), 0)))
        return prompt, role
