"""The program contracts: what a candidate module must define, per setting.

One table used in three places: the static loader check (in the trusted process), the
dynamic check inside the sandbox child, and freezing/reloading.
"""

from __future__ import annotations

from dataclasses import dataclass

EVOLVE_START = "# EVOLVE-BLOCK-START"
EVOLVE_END = "# EVOLVE-BLOCK-END"


@dataclass(frozen=True)
class Contract:
    setting: str
    factory: str
    methods: dict[str, tuple[str, ...]]

    def describe(self) -> str:
        calls = ", ".join(f"{m}({', '.join(args)})" for m, args in self.methods.items())
        return f"{self.factory}(seed) returning an object with {calls}"


TAB = Contract("tab", "build_feature_program", {"fit": ("X", "y"), "transform": ("X", "state")})
TIME = Contract(
    "time",
    "build_transform_program",
    {
        "fit": ("y_hist", "meta"),
        "transform": ("y", "state"),
        "inverse_transform": ("z", "state"),
    },
)
CONTRACTS = {c.setting: c for c in (TAB, TIME)}


def contract_for(setting: str) -> Contract:
    try:
        return CONTRACTS[setting]
    except KeyError:
        raise ValueError(f"unknown setting {setting!r}; expected one of {sorted(CONTRACTS)}") from None
