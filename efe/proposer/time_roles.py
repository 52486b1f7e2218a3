"""The proposer roles of EFE-Time: each a kind of normalisation, with its slice of the move library
(``efe.proposer.time_moves``) and its prompt (``efe/prompts/roles/time/<role>.txt``)."""

from __future__ import annotations

from efe.proposer.time_moves import candidate_moves

ROLE_KINDS: dict[str, tuple[str, ...]] = {
    "variance": ("log", "boxcox"),
    "scaling": ("recent_scale", "level_anchor"),
    "detrending": ("detrend", "difference"),
    "seasonal": ("seasonal_adjust",),
    "robust": ("robust_scale",),
}


def applicable_roles(context: dict) -> list[str]:
    """The roles with at least one move for these series (no season: no seasonal adjustment)."""
    kinds = {m.kind for m, _ in candidate_moves(context)}
    found = [role for role, role_kinds in ROLE_KINDS.items() if kinds & set(role_kinds)]
    return found or list(ROLE_KINDS)
