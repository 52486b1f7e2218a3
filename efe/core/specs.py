"""Typed run specs: what a tabular or time-series run was started with, as frozen dataclasses.

A spec is built once from the resolved Hydra config (``efe.tab.prepare``, ``efe.time.prepare``,
``efe.cli.common``), written to ``spec.json`` in the run directory and read back here, also by
the evaluators inside openevolve's worker processes. These are the only typed configuration: the
evaluators, the gates, the fitness formulas and the sandbox take the spec's parts (``TabGateSpec``,
``TabFitnessSpec``, ``FeedbackSpec``, ``TimeFitnessSpec``, ``SandboxSpec``) as they are, and what runs
outside a run builds them from the packaged ``conf/`` (``conf_part``). The dataclasses hold no
defaults: every tunable value comes from ``conf/``. A spec.json of an earlier efe version may lack a section
that ``conf/`` has since gained; ``spec_from_dict`` fills such keys from the packaged ``conf/``
defaults (``CONF_SECTIONS``), once, and any other missing key is a one-line ``SpecError``.
The JSON stays flat (one object, the search's keys beside the setting's), as earlier runs wrote it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import types
import typing
from dataclasses import dataclass, fields, is_dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping, TypeVar, Union

from omegaconf import OmegaConf

from efe.core.errors import EfeError
from efe.core.resources import conf_dir
from efe.core.runspec import read_spec


T = TypeVar("T")


class SpecError(EfeError):
    """A run spec that cannot be read: names the missing or malformed key."""


# ---------------------------------------------------------------- parts both settings share
@dataclass(frozen=True)
class SandboxSpec:
    """The limits of one sandboxed call (conf ``sandbox``): what ``efe.sandbox.Sandbox`` takes."""
    timeout_s: float               # wall clock per call, then the child is killed
    cpu_s: float
    memory_mb: int                 # address space on top of the worker's own
    require_isolation: bool        # the run commands refuse a machine without kernel isolation
    max_output_bytes: int          # a larger result is refused (output_too_large)


@dataclass(frozen=True)
class NoveltySpec:
    enabled: bool
    retries_offline: int
    retries_llm: int


@dataclass(frozen=True)
class ProposalSpec:
    plan_first: bool
    judge: dict[str, Any]          # the judge config group (name, and its own settings)
    novelty: NoveltySpec


@dataclass(frozen=True)
class SearchSpec:
    """What the search adds to a setting's spec: files, the LLM, proposals, where evaluations run."""
    context_path: str
    seed_program: str
    outcomes_dir: str
    llm: dict[str, Any]            # the llm config group, with the resolved ``backend``
    offline_proposer: str
    offline_moves: dict[str, Any]  # proposer.moves: the offline proposer's move-library limits
    proposal: ProposalSpec
    executor: dict[str, Any]       # evolution.executor (``kind``) with the executor section (Ray adds its gate)
    sandbox_mode: str
    roles: dict[str, Any]          # efe.steering.summary.roles_spec: the proposer roles and the router
    memory: dict[str, Any]         # efe.steering.memory.memory_spec: fingerprint, schema, what was recalled


# ---------------------------------------------------------------- tabular
@dataclass(frozen=True)
class TabDatasetSpec:
    name: str
    description: str
    positive_label: Any            # binary only (None otherwise)
    warnings: list[str]
    classes: list[Any]             # classification: the target's values in code order (empty for regression)
    task_note: str                 # how the task was chosen (inferred from the target, or given)


@dataclass(frozen=True)
class PoolsSpec:
    n_folds: int
    n_repeats: int
    cascade_folds: int
    cascade_optimism_z: float


@dataclass(frozen=True)
class TabGateSpec:
    """The tabular gates' sample and thresholds (conf ``gate``); the evaluator's gates take it.

    ``reindex_stride`` / ``reindex_offset``: the index-invariance check gives the sample the index
    ``permutation * stride + offset`` (far from any 0..n range a program could rely on).
    """
    sample_rows: int
    n_partitions: int
    max_column_factor: float
    max_abs_value: float
    rtol: float
    atol: float
    label_free_state: bool
    reindex_stride: int
    reindex_offset: int


@dataclass(frozen=True)
class TabFitnessSpec:
    offset: float
    auc_weight: float
    complexity_weight: float
    runtime_penalties: list[list[float]]  # [seconds, penalty] pairs: the largest exceeded applies
    clip: list[float]                     # [low, high]
    invalid_score: float
    confidence_z: float


@dataclass(frozen=True)
class FeedbackSpec:
    """What stage 2 explains about a program, learnt on pool A (conf ``feedback``).

    ``perm_*``: the LightGBM model whose ROC-AUC drop gives permutation importance, fitted on
    ``1 - perm_eval_fraction`` of pool A and scored on the rest; pool A needs ``perm_min_rows`` rows.
    ``tree_min_leaf`` / ``tree_rows_per_leaf``: the readable tree's leaves hold at least
    max(min_leaf, rows // rows_per_leaf) rows.
    ``output_chars``: the tail of the program's printed output kept for the prompt; ``error_chars``: the
    longest error message quoted (the scorer's or the feedback's own).
    """
    enabled: bool
    importance: str
    permutation_repeats: int
    tree_depth: int
    max_features: int
    max_rows: int
    perm_n_estimators: int
    perm_learning_rate: float
    perm_num_leaves: int
    perm_eval_fraction: float
    perm_min_rows: int
    tree_min_leaf: int
    tree_rows_per_leaf: int
    output_chars: int
    error_chars: int


@dataclass(frozen=True)
class ScoringSpec:
    max_rows: int | None
    threads: int | None


@dataclass(frozen=True)
class SelectionPoolSpec:
    fraction: float
    seed: int
    max_rows: int | None  # above scoring.max_rows training rows, the pool's cap (None: no cap; specs before it)


@dataclass(frozen=True)
class TabSpec:
    setting: str
    run_dir: str | None
    dataset: TabDatasetSpec
    train_path: str
    target: str
    task: str                      # binary | multiclass | regression (efe.core.task)
    seed: int
    scorer: dict[str, Any]         # the scorer config group: name, params (and model_path for tabpfn)
    pools: PoolsSpec
    gate: TabGateSpec
    fitness: TabFitnessSpec
    sandbox: SandboxSpec
    feedback: FeedbackSpec
    scoring: ScoringSpec
    selection_pool: SelectionPoolSpec
    search: SearchSpec | None      # None: a spec for scoring only (efe.score, benchmarks)


# ---------------------------------------------------------------- time series
@dataclass(frozen=True)
class TimeDatasetSpec:
    name: str
    description: str
    warnings: list[str]
    n_series: int


@dataclass(frozen=True)
class WindowsSpec:
    n_windows: int
    stride: int                    # in steps (conf gives it in horizons)
    min_history: int
    end_offset: int                # steps at the end of each series kept for the selection windows
    max_history: int
    max_total: int
    n_rotations: int
    min_instances_per_rotation: int


@dataclass(frozen=True)
class TimeSelectionSpec:
    windows: int
    claim_windows: int
    top_k: int
    require_gain: bool
    confirm: bool
    min_gain: float
    max_series_loss: float | None
    interval_z: float
    min_windows_per_series: float  # evidence: effective selection + claim windows every series needs
    min_windows_total: float       #   and all series together, before a program can be frozen


@dataclass(frozen=True)
class SeriesLossSpec:
    z: float                       # a series is harmed when change + z * SE < -selection.max_series_loss
    se_origins: int                # its SE from this many origins spread over its history
    prior_dof: float               # shrinkage of that SD towards the pooled one


@dataclass(frozen=True)
class HeldoutSpec:
    windows: int
    stride: int


@dataclass(frozen=True)
class TimeGateSpec:
    sample_series: int
    round_trip_rtol: float
    widen: float


@dataclass(frozen=True)
class TimeFitnessSpec:
    offset: float
    mase_weight: float
    fallback_weight: float         # times the share of instances where the program failed (identity used)
    harm_weight: float             # times max(0, harmed share - helped share)
    harm_tolerance: float
    complexity_weight: float       # times (EVOLVE-block lines beyond free_lines) / 100
    free_lines: int
    clip: list[float]              # [low, high]
    invalid_score: float
    confidence_z: float            # the gain counts at mean - z * SE (same name and meaning as on the tabular side)


@dataclass(frozen=True)
class TimeSpec:
    setting: str
    seed: int
    train_path: str
    dataset: TimeDatasetSpec
    freq: str
    prediction_length: int
    season: int
    quantile_levels: list[float]
    forecaster: dict[str, Any]     # the forecaster config group, with the run's max_history
    windows: WindowsSpec
    selection: TimeSelectionSpec
    series_loss: SeriesLossSpec
    heldout: HeldoutSpec
    gate: TimeGateSpec
    fitness: TimeFitnessSpec
    sandbox: SandboxSpec
    run_dir: str | None
    search: SearchSpec | None


RunSpec = Union[TabSpec, TimeSpec]
SETTINGS: dict[str, type] = {"tab": TabSpec, "time": TimeSpec}

# Sections whose values are conf/ sections as they are: a spec.json written before a key existed
# gets it from the packaged conf/ (<setting>.yaml) when read. Spec key -> conf key.
CONF_SECTIONS: dict[str, dict[str, str]] = {
    "tab": {"pools": "pools", "gate": "gate", "fitness": "fitness", "sandbox": "sandbox",
            "feedback": "feedback", "scoring": "scoring"},
    "time": {"gate": "gate", "fitness": "fitness", "sandbox": "sandbox", "quantile_levels": "quantile_levels",
             "selection": "selection", "series_loss": "series_loss"},
}
# Search sections, the same way (both settings)
SEARCH_CONF: dict[str, str] = {"proposal.novelty": "proposer.novelty", "proposal.plan_first": "proposer.plan_first"}


# ---------------------------------------------------------------- building, reading, writing
def spec_from_dict(data: Mapping[str, Any]) -> RunSpec:
    """The typed spec of a spec.json's content (missing conf-backed keys from the packaged conf/)."""
    if isinstance(data, (TabSpec, TimeSpec)):
        return data
    if not isinstance(data, Mapping):
        raise SpecError(f"a run spec is a JSON object, got {type(data).__name__}")
    setting = data.get("setting")
    if setting not in SETTINGS:
        raise SpecError(f"run spec: 'setting' must be one of {sorted(SETTINGS)}, got {setting!r}")
    data = _complete(str(setting), data)
    return build(SETTINGS[str(setting)], data)


def tab_spec(data: Mapping[str, Any] | TabSpec) -> TabSpec:
    spec = spec_from_dict(data if isinstance(data, TabSpec) else {"setting": "tab", **data})
    if not isinstance(spec, TabSpec):
        raise SpecError(f"expected a tabular run spec, got a {spec.setting} one")
    return spec


def time_spec(data: Mapping[str, Any] | TimeSpec) -> TimeSpec:
    spec = spec_from_dict(data if isinstance(data, TimeSpec) else {"setting": "time", **data})
    if not isinstance(spec, TimeSpec):
        raise SpecError(f"expected a time-series run spec, got a {spec.setting} one")
    return spec


def spec_to_dict(spec: RunSpec) -> dict[str, Any]:
    """The flat JSON object of ``spec.json``: the search's keys beside the setting's."""
    out = {f.name: _plain(getattr(spec, f.name)) for f in fields(spec) if f.name != "search"}
    if spec.search is not None:
        out.update(_plain(spec.search))
    return out


def save_spec(path: str | Path, spec: RunSpec) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(spec_to_dict(spec), indent=2, sort_keys=True, default=str))
    return path


def load_spec(path: str | Path | None = None) -> RunSpec:
    """The typed spec in a run directory's ``spec.json`` (or at ``path``; None: ``$EFE_RUN_SPEC``)."""
    p = Path(path) if path is not None else None
    if p is not None and p.is_dir():
        p = p / "spec.json"
    try:
        data = read_spec(p)
    except ValueError as exc:
        raise SpecError(f"run spec '{p}' is not JSON: {exc}") from None
    try:
        return spec_from_dict(data)
    except SpecError as exc:
        raise SpecError(f"{p or 'run spec'}: {exc}") from None


def build(cls: type, data: Mapping[str, Any], where: str = "") -> Any:
    """``cls`` from ``data``: every field is required (a missing one is a ``SpecError`` naming it)."""
    if not isinstance(data, Mapping):
        raise SpecError(f"run spec: '{where or cls.__name__}' must be an object, got {type(data).__name__}")
    hints = _hints(cls)
    kwargs = {}
    for f in fields(cls):
        key = f"{where}.{f.name}" if where else f.name
        if f.name == "search" and cls in (TabSpec, TimeSpec):
            kwargs[f.name] = build(SearchSpec, data, "") if "llm" in data else None
            continue
        if f.name not in data:
            raise SpecError(f"run spec: missing key '{key}'")
        kwargs[f.name] = _value(hints[f.name], data[f.name], key)
    return cls(**kwargs)


def _value(hint: Any, value: Any, key: str) -> Any:
    options = typing.get_args(hint) if _is_union(hint) else (hint,)
    if value is None and type(None) in options:
        return None
    for option in options:
        if is_dataclass(option):
            return build(option, value, key)
    return value


def _is_union(hint: Any) -> bool:
    return typing.get_origin(hint) is Union or isinstance(hint, types.UnionType)


@lru_cache(maxsize=None)
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _plain(value: Any) -> Any:
    if is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _complete(setting: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with the conf-backed keys it lacks taken from the packaged conf/ defaults."""
    out = dict(data)
    if setting == "tab" and "selection_pool" not in out:  # written before the selection pool: no pool
        out["selection_pool"] = {"fraction": 0.0, "seed": out.get("seed")}
    if setting == "tab" and isinstance(out.get("selection_pool"), Mapping):  # written before the pool's own cap
        out["selection_pool"] = {"max_rows": None, **out["selection_pool"]}
    if setting == "tab" and "task" not in out:  # written when efe.tab handled binary targets only
        out["task"] = "binary"
    if setting == "tab" and isinstance(out.get("dataset"), Mapping):
        out["dataset"] = {"classes": [], "task_note": "", **out["dataset"]}
    conf = _conf_defaults(setting)
    for key, conf_key in CONF_SECTIONS[setting].items():
        out[key] = _fill(out.get(key), conf[conf_key]) if key in out else conf[conf_key]
    if "llm" in out:  # a search run's spec
        proposal = dict(out.get("proposal") or {})
        for key, conf_key in SEARCH_CONF.items():
            name = key.split(".", 1)[1]
            section, _, leaf = conf_key.partition(".")
            default = conf[section][leaf]
            proposal[name] = _fill(proposal[name], default) if name in proposal else default
        proposal.setdefault("judge", _judge_default())
        out["proposal"] = proposal
    return out


def _fill(value: Any, default: Any) -> Any:
    if isinstance(value, Mapping) and isinstance(default, Mapping):
        return {**default, **{k: _fill(v, default.get(k)) for k, v in value.items()}}
    return value


@lru_cache(maxsize=None)
def _conf_defaults(config_name: str) -> dict[str, Any]:
    """The packaged ``conf/<config_name>.yaml`` (its own keys, not the config groups), resolved."""
    raw = OmegaConf.load(conf_dir() / f"{config_name}.yaml")
    keep = {k: raw[k] for k in raw if k not in ("defaults", "hydra", "memory")}
    return OmegaConf.to_container(OmegaConf.create(keep), resolve=True)


@lru_cache(maxsize=None)
def _judge_default() -> dict[str, Any]:
    return OmegaConf.to_container(OmegaConf.load(conf_dir() / "judge" / "none.yaml"), resolve=True)


def conf_part(cls: type[T], config_name: str, key: str) -> T:
    """A spec part built from the packaged ``conf/<config_name>.yaml``'s section ``key``.

    For what runs outside a run (no spec.json to read): e.g. the sandbox limits of a frozen program
    (``conf_part(SandboxSpec, "apply", "sandbox_limits")``). A missing key is a ``SpecError`` naming it.
    """
    section = _conf_defaults(config_name).get(key)
    if section is None:
        raise SpecError(f"conf/{config_name}.yaml has no '{key}' section")
    return build(cls, copy.deepcopy(section), key)


def replace(spec: Any, **changes: Any) -> Any:
    """A copy of a (frozen) spec or spec part with ``changes``."""
    return dataclasses.replace(spec, **changes)
