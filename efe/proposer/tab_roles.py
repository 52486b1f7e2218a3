"""The proposer roles of EFE-Tab: each a kind of feature-engineering change, with its slice of the
move library (``efe.proposer.tab_moves``) and its prompt (``efe/prompts/roles/tab/<role>.txt``).

The router (``efe.steering.router``) picks one role per iteration; the LLM reads the role's prompt, the
offline proposer adds only its moves. A role whose moves do not apply to the dataset (no date
columns, no categories) is left out of the run.
"""

from __future__ import annotations

from efe.proposer.tab_moves import candidate_moves

ROLE_KINDS: dict[str, tuple[str, ...]] = {
    "unary": ("log", "bin", "square"),
    "interactions": ("ratio", "product", "diff", "expand"),
    "aggregations": ("group_mean", "group_dev", "group_std", "group_rank"),
    "encodings": ("freq", "count", "target_enc", "te_oof", "rare", "combo"),
    "dates": ("date_part", "date_cyc"),
    "patterns": ("outlier", "qrank", "missing", "len", "token", "extract", "words", "has_word"),
    "pruning": ("drop",),
}


def applicable_roles(context: dict) -> list[str]:
    """The roles with at least one move for this dataset, in the table's order."""
    kinds = {m.kind for m, _ in candidate_moves(context)}
    found = [role for role, role_kinds in ROLE_KINDS.items() if kinds & set(role_kinds)]
    return found or list(ROLE_KINDS)
