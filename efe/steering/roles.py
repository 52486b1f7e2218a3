"""Proposer roles in the prompt: the role's instructions and a ``### role`` section naming it.

The run layer lists a setting's roles in the run spec (``roles``); ``Steering`` picks the role of
each proposal with the router (``efe.steering.router``), appends the role's prompt
(``efe/prompts/roles/<setting>/<role>.txt``) and the memory rules (``efe.steering.rules``) to the user
message. The offline proposer reads the same sections back (``role_of``), so both paths share the
roles.
"""

from __future__ import annotations

import hashlib
import random
from pathlib import Path
from typing import Any, Mapping

from efe.steering.rules import RULES_SECTION, RuleBook, bounded, render_rules
from efe.steering.router import choose_role, role_stats
from efe.rundir.records import read_lineage
from efe.core.programs import prompt_parts, proposal_request
from efe.rundir.claims import claim_index

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

    def __init__(self, run_dir: str | Path, seed: int, roles: Mapping[str, Any], memory: Mapping[str, Any],
                 deterministic: bool = False) -> None:
        """``roles`` and ``memory``: the search spec's parts (``roles_spec``, ``memory_spec`` of efe.search);
        ``deterministic``: a role is drawn from what the proposer reads of the prompt (not its timings)."""
        self.deterministic = deterministic
        self.run_dir = Path(run_dir)
        # every key is there: roles_spec / memory_spec build them from conf (no defaults repeated here)
        self.setting = str(roles["setting"])
        self.names = [str(r) for r in roles["names"]]
        self.router = str(roles["router"])
        self.exploration = float(roles["exploration"])
        self.cost_weight = float(roles["cost_weight"])
        self.seed = int(seed)
        self.max_rules = int(memory["max_rules"])
        self.rules_in_prompt = bool(memory["rules_in_prompt"])
        self.earlier_rules = list(memory["rules"])
        self.rulebook = RuleBook(self.run_dir, self.max_rules)

    @property
    def enabled(self) -> bool:
        return bool(self.names)

    def _ticket(self) -> int:
        """A number no other proposal of this run (in any worker process) has drawn."""
        return claim_index(self.run_dir / "router_tickets", "ticket")

    def steer(self, prompt: str, exclude: frozenset[str] = frozenset()) -> tuple[str, str | None]:
        """(the prompt with role and memory sections, the role) for one proposal; ``exclude``: roles
        whose proposal was just turned down as a duplicate (none left: the generic proposer)."""
        names = [n for n in self.names if n not in exclude]
        if not names and not self.rules_in_prompt:
            return prompt, None
        lineage = read_lineage(self.run_dir)
        role = None
        if names:
            # a ticket per proposal: workers asking at the same moment, with the same lineage, still draw apart
            request = proposal_request(prompt, (ROLE_SECTION, RULES_SECTION)) if self.deterministic else prompt
            digest = hashlib.sha256(f"{self.seed}|{self._ticket()}|{len(lineage)}|{request}".encode()).hexdigest()
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
