"""Move library of the offline proposer: sound feature-engineering steps, rendered as programs.

A program written here is a list of moves (log, ratio, target encoding, ...) rendered into a
complete, readable feature program whose manifest comment lets the next generation recover the
list. ``propose`` is a real search operator: it adds, removes or swaps one move, weighted by the
dataset context and the evaluator's feedback, and needs no LLM. Every rendered program learns its
statistics in ``fit`` only and treats each row on its own in ``transform``, so it passes the gates.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from efe.core.config import dataclass_from_mapping
from efe.core.contracts import EVOLVE_END, EVOLVE_START
from efe.core.moves_manifest import MANIFEST as MANIFEST  # re-exported: the marker the rendered programs carry
from efe.core.moves_manifest import manifest_line, read_manifest
from efe.proposer.moves_common import NoMoveAvailable as NoMoveAvailable  # re-exported: what propose raises
from efe.proposer.moves_common import pick, rule_weight

KINDS = ("log", "ratio", "product", "diff", "freq", "target_enc", "group_mean", "group_dev", "bin",
         "missing", "len", "token", "drop", "date_part", "outlier", "qrank")
ARITY = {"ratio": 2, "product": 2, "diff": 2, "group_mean": 2, "group_dev": 2}
DEFAULT_PARAMS: dict[str, tuple] = {"bin": (5,), "target_enc": (20,), "outlier": (3.0,), "qrank": (20,)}
DATE_PARTS = ("year", "month", "dayofweek")
ISO_DATE = r"^\d{4}-\d{2}-\d{2}"
# Base weight of each kind: how often it helps a tree scorer in practice (monotone maps such as
# log and bins change little for trees; encodings and interactions change the split structure).
BASE_WEIGHT = {"log": 0.6, "ratio": 1.0, "product": 0.6, "diff": 0.6, "freq": 0.4, "target_enc": 0.9,
               "group_mean": 0.4, "group_dev": 0.6, "bin": 0.25, "missing": 0.5, "len": 0.3,
               "token": 1.2, "drop": 0.3, "date_part": 0.8, "outlier": 0.4, "qrank": 0.3}
TITLE_RE = r"\b([A-Z][a-z]{0,9})\."


@dataclass(frozen=True)
class MoveLimits:
    """How wide the library looks and how long a program may grow (conf ``proposer.moves``)."""

    pair_top: int = 4           # the most informative numeric columns combined pairwise
    group_top: int = 3          # numeric columns and grouping columns crossed for group statistics
    max_missing: float = 0.5    # columns missing more often than this get no derived feature (it could be
                                # all-NaN on the small gate sample)
    redundant_r: float = 0.95   # |correlation| above which one of the two columns is offered for dropping
    max_moves: int = 8          # moves in one program (and at most 4x the input columns)

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any] | None) -> "MoveLimits":
        return dataclass_from_mapping(cls, m)


@dataclass(frozen=True)
class Move:
    kind: str
    columns: tuple[str, ...]
    params: tuple = ()

    def feature_name(self) -> str | None:
        """The column this move adds (None for "drop", which removes one)."""
        c = self.columns
        names = {
            "log": lambda: f"log_{c[0]}",
            "ratio": lambda: f"{c[0]}_over_{c[1]}",
            "product": lambda: f"{c[0]}_times_{c[1]}",
            "diff": lambda: f"{c[0]}_minus_{c[1]}",
            "freq": lambda: f"freq_{c[0]}",
            "target_enc": lambda: f"te_{c[0]}",
            "group_mean": lambda: f"{c[0]}_mean_by_{c[1]}",
            "group_dev": lambda: f"{c[0]}_dev_by_{c[1]}",
            "bin": lambda: f"{c[0]}_bin{self.params[0] if self.params else 5}",
            "missing": lambda: f"{c[0]}_is_missing",
            "len": lambda: f"{c[0]}_len",
            "token": lambda: f"{c[0]}_title",
            "drop": lambda: None,
            "date_part": lambda: f"{c[0]}_{self.params[0] if self.params else 'month'}",
            "outlier": lambda: f"{c[0]}_is_outlier",
            "qrank": lambda: f"{c[0]}_qrank",
        }
        if self.kind not in names:
            raise ValueError(f"unknown move kind {self.kind!r}; known: {', '.join(KINDS)}")
        return names[self.kind]()

    def describe(self) -> str:
        target = self.feature_name() or "(column removed)"
        return f"{self.kind}({', '.join(self.columns)}) -> {target}"


# --------------------------------------------------------------------------- candidates


def candidate_moves(context: dict, importance: dict[str, float] | None = None,
                    limits: MoveLimits = MoveLimits()) -> list[tuple[Move, float]]:
    """Every sensible move for this dataset, with a positive weight from context and feedback."""
    cols: dict[str, dict] = context.get("columns", {})
    n_rows = int(context.get("n_rows") or 0)
    info = {c: _informativeness(i, context) for c, i in cols.items()}
    raw: list[tuple[Move, float]] = []

    def add(kind: str, columns: tuple[str, ...], base: float | None = None) -> None:
        raw.append((Move(kind, columns, DEFAULT_PARAMS.get(kind, ())),
                    BASE_WEIGHT[kind] if base is None else base))

    usable = {c: i for c, i in cols.items() if (i.get("missing_rate") or 0.0) <= limits.max_missing}
    numeric = [c for c, i in usable.items() if i.get("kind") == "numeric" and i.get("n_unique", 0) >= 3]
    ranked = sorted(numeric, key=lambda c: -(info[c] + 5 * max(0.0, (importance or {}).get(c, 0.0))))
    for c in numeric:
        i = cols[c]
        if (i.get("min") or 0.0) >= 0 and (i.get("skew") or 0.0) > 1.0:
            add("log", (c,))
        if i.get("n_unique", 0) > 10:
            add("bin", (c,))
            add("qrank", (c,))
        if abs(i.get("skew") or 0.0) > 1.0:
            add("outlier", (c,))
    order = {c: k for k, c in enumerate(cols)}
    top = sorted(ranked[:limits.pair_top], key=order.get)  # canonical order: a pair is one move whatever the ranking
    for k, a in enumerate(top):
        for b in top[k + 1:]:
            if _mostly_nonzero(cols[b]):
                add("ratio", (a, b))
            elif _mostly_nonzero(cols[a]):
                add("ratio", (b, a))
            add("product", (a, b))
            add("diff", (a, b))
    categorical = [c for c, i in usable.items()
                   if i.get("kind") == "categorical" and not i.get("mostly_unique") and i.get("n_unique", 0) >= 2]
    for c in categorical:
        n = cols[c].get("n_unique", 0)
        if n >= 3:
            add("freq", (c,))
            if n <= max(3, n_rows // 20):
                add("target_enc", (c,), BASE_WEIGHT["target_enc"] * (1.0 + min(n, 20) / 20))
    groupers = sorted([c for c in categorical if cols[c].get("n_unique", 0) <= 50]
                      + [c for c, i in usable.items() if i.get("kind") == "boolean"],
                      key=lambda c: -info[c])[:limits.group_top]
    for a in ranked[:limits.group_top]:
        for g in groupers:
            add("group_mean", (a, g))
            add("group_dev", (a, g))
    for c, i in cols.items():
        examples = [str(e) for e in i.get("examples", [])]
        if i.get("kind") == "datetime" or (examples and all(re.match(ISO_DATE, e) for e in examples)):
            for part in DATE_PARTS:
                raw.append((Move("date_part", (c,), (part,)), BASE_WEIGHT["date_part"]))
        if 0.0 < (i.get("missing_rate") or 0.0) < 1.0:
            add("missing", (c,), BASE_WEIGHT["missing"] + float(i["missing_rate"]))
        if i.get("mostly_unique") and i.get("kind") == "categorical":
            add("len", (c,))
            examples = [str(e) for e in i.get("examples", [])]
            if examples and sum(bool(re.search(TITLE_RE, e)) for e in examples) * 2 >= len(examples):
                add("token", (c,))
    col_imp = _column_importance(importance, [m for m, _ in raw])
    out: list[tuple[Move, float]] = []
    seen: set[Move] = set()
    for move, base in raw:
        name = move.feature_name()
        if move in seen or (name is not None and name in cols):
            continue  # a clash would overwrite an original column
        seen.add(move)
        mean_info = sum(info[c] for c in move.columns) / len(move.columns)
        if move.kind == "date_part":
            mean_info = max(mean_info, 0.1)  # text dates show no correlation before they are parsed
        boost = sum(_boost(col_imp, c, importance) for c in move.columns) / len(move.columns)
        out.append((move, float(base * (0.1 + mean_info) * boost)))
    for a, b, r in context.get("top_correlations", []):
        if abs(float(r)) > limits.redundant_r and a in cols and b in cols:
            keep_score = {c: info[c] + 5 * col_imp.get(c, 0.0) for c in (a, b)}
            victim = b if keep_score[a] >= keep_score[b] else a
            move = Move("drop", (victim,))
            if move not in seen:
                seen.add(move)
                weak = importance is not None and col_imp.get(victim, 0.0) <= 0.0
                out.append((move, BASE_WEIGHT["drop"] * (1.5 if weak else 1.0)))
    allowed = context.get("allowed_moves")  # e.g. only stateless moves for an LLM-FE-style search
    return [(m, w) for m, w in out if m.kind in allowed] if allowed else out


STATELESS_KINDS = ("log", "ratio", "product", "diff", "missing", "len", "token", "drop", "date_part")


def _informativeness(info: dict, context: dict) -> float:
    """|correlation with the target| for numerics, largest shift of the positive rate for categories."""
    if info.get("kind") == "numeric":
        return abs(float(info.get("target_corr") or 0.0))
    rates = info.get("positive_rate_by_top_value") or {}
    base = float(context.get("positive_rate") or 0.0)
    return max((abs(float(r) - base) for r in rates.values() if r is not None), default=0.0)


def _mostly_nonzero(info: dict) -> bool:
    """At least three quarters of the values on one side of 0: a ratio is rarely NaN."""
    return (info.get("q25") or 0.0) > 0 or (info.get("q75") or 0.0) < 0


def _column_importance(importance: dict[str, float] | None, moves: list[Move]) -> dict[str, float]:
    """Importance per original column; an engineered column lends its importance to its inputs."""
    if not importance:
        return {}
    result = {str(c): float(v) for c, v in importance.items()}
    for move in moves:
        name = move.feature_name()
        if name is not None and name in importance:
            for c in move.columns:
                result[c] = max(result.get(c, float(importance[name])), float(importance[name]))
    return result


def _boost(col_imp: dict[str, float], column: str, importance: dict | None) -> float:
    if importance is None:
        return 1.0
    value = col_imp.get(column)
    if value is None:
        return 1.0
    return 0.75 if value <= 0.0 else 1.0 + min(4.0, 25.0 * value)


# --------------------------------------------------------------------------- rendering

_HELPERS = '''MISSING = "<missing>"
LIMIT = 1e9
TITLE = r"{title}"


def _num(X, col):
    """A column as float64; text that is not a number becomes NaN."""
    return pd.to_numeric(X[col], errors="coerce").astype("float64")


def _keys(X, col):
    """Category levels as text; a missing value is a level of its own."""
    s = X[col]
    return s.astype(str).where(s.notna(), MISSING)


def _finite(values):
    """Overflow and extreme magnitudes become NaN: no feature is ever inf or beyond the gates' cap."""
    values = values.astype("float64")
    return values.where(np.isfinite(values) & (values.abs() <= LIMIT))


def _plain(value, default=0.0):
    """A fitted number as a plain float (NaN, e.g. from an empty group, becomes the default)."""
    value = float(value)
    return value if math.isfinite(value) else default
'''.replace("{title}", TITLE_RE)


def _section(move: Move) -> tuple[str, list[str], list[str]]:
    """(comment, fit lines, transform lines) of one move; N is the state key and new column."""
    c = [_literal(x) for x in move.columns]
    n = _literal(move.feature_name() or "")
    a = c[0]
    b = c[1] if len(c) > 1 else None
    k = move.kind
    if k == "log":
        return ("log(1 + x - shift) compresses a long right tail",
                [f'state[{n}] = {{"shift": min(0.0, _plain(_num(X, {a}).min()))}}'],
                [f'out[{n}] = _finite(np.log1p((_num(X, {a}) - state[{n}]["shift"]).clip(lower=0.0)))'])
    if k == "ratio":
        return ("ratio; a denominator within eps of 0 gives NaN, never inf",
                [f'state[{n}] = {{"eps": max(1e-9, 1e-6 * _plain(_num(X, {b}).abs().median()))}}'],
                [f"den = _num(X, {b})",
                 f'out[{n}] = _finite(_num(X, {a}) / den.where(den.abs() > state[{n}]["eps"]))'])
    if k == "product":
        return ("product: an interaction trees find hard to build from axis splits", [],
                [f"out[{n}] = _finite(_num(X, {a}) * _num(X, {b}))"])
    if k == "diff":
        return ("difference of two related quantities", [],
                [f"out[{n}] = _finite(_num(X, {a}) - _num(X, {b}))"])
    if k == "freq":
        return ("frequency encoding: share of fitting rows at the level (0 for unseen levels)",
                [f"share = _keys(X, {a}).value_counts(normalize=True)",
                 f'state[{n}] = {{"share": {{str(key): float(v) for key, v in share.items()}}}}'],
                [f'out[{n}] = _keys(X, {a}).map(state[{n}]["share"]).astype("float64").fillna(0.0)'])
    if k == "target_enc":
        m = float(move.params[0]) if move.params else 20.0
        return (f"positive rate per level, shrunk to the overall rate with weight {m:g} (unseen: overall)",
                [f'counts = target.groupby(_keys(X, {a}).to_numpy()).agg(["sum", "count"])',
                 "prior = _plain(target.mean())",
                 f'rate = (counts["sum"] + {m!r} * prior) / (counts["count"] + {m!r})',
                 f'state[{n}] = {{"prior": prior, "rate": {{str(key): float(v) for key, v in rate.items()}}}}'],
                [f'rate = _keys(X, {a}).map(state[{n}]["rate"]).astype("float64")',
                 f'out[{n}] = rate.fillna(state[{n}]["prior"])'])
    if k in ("group_mean", "group_dev"):
        fit = [f"x = _num(X, {a})",
               "overall = _plain(x.mean())",
               f"means = x.groupby(_keys(X, {b}).to_numpy()).mean()",
               "group_means = {str(key): _plain(v, overall) for key, v in means.items()}",
               f'state[{n}] = {{"overall": overall, "mean": group_means}}']
        mean = f'mean = _keys(X, {b}).map(state[{n}]["mean"]).astype("float64").fillna(state[{n}]["overall"])'
        if k == "group_mean":
            return ("mean of the numeric column in the row's group (unseen groups: overall mean)", fit,
                    [mean, f"out[{n}] = mean"])
        return ("deviation from the group mean: how unusual the row is within its group", fit,
                [mean, f"out[{n}] = _finite(_num(X, {a}) - mean)"])
    if k == "bin":
        bins = int(move.params[0]) if move.params else 5
        return (f"{bins} quantile bins with edges fitted on the fitting rows (NaN stays NaN)",
                [f"x = _num(X, {a}).dropna()",
                 f"inner = np.linspace(0.0, 1.0, {bins + 1})[1:-1]",
                 "edges = np.unique(np.quantile(x, inner)) if len(x) else []",
                 f'state[{n}] = {{"edges": [float(e) for e in edges]}}'],
                [f"x = _num(X, {a})",
                 f'edges = np.asarray(state[{n}]["edges"], dtype="float64")',
                 'codes = np.searchsorted(edges, x.to_numpy(), side="right")',
                 f'out[{n}] = pd.Series(codes, index=X.index, dtype="float64").where(x.notna())'])
    if k == "missing":
        return ("missing-value indicator: missingness itself can carry signal", [],
                [f'out[{n}] = X[{a}].isna().astype("float64")'])
    if k == "len":
        return ("text length of a near-unique text column", [],
                [f"s = X[{a}]",
                 f'out[{n}] = s.astype(str).str.len().astype("float64").where(s.notna())'])
    if k == "token":
        return ("title-like token ('Mr.', 'Dr.'); tokens seen < 10 times in fit become 'other'",
                [f"found = X[{a}].astype(str).str.extract(TITLE, expand=False).dropna()",
                 "counts = found.value_counts()",
                 f'state[{n}] = {{"tokens": sorted(str(t) for t in counts[counts >= 10].index[:20])}}'],
                [f"tok = X[{a}].astype(str).str.extract(TITLE, expand=False)",
                 f'out[{n}] = tok.where(tok.isin(state[{n}]["tokens"]), "other").where(tok.notna(), "none")'])
    if k == "date_part":
        part = str(move.params[0]) if move.params else "month"
        return (f"calendar part '{part}' of a date parsed row by row (ISO text or datetime; unparseable: NaN)", [],
                [f'when = pd.to_datetime(X[{a}], errors="coerce", format="ISO8601", utc=True)',
                 f'out[{n}] = getattr(when.dt, {_literal(part)}).astype("float64")'])
    if k == "outlier":
        z = float(move.params[0]) if move.params else 3.0
        return (f"outlier flag: more than {z:g} IQRs from the median fitted on the fitting rows",
                [f"x = _num(X, {a}).dropna()",
                 "q1, med, q3 = (np.quantile(x, [0.25, 0.5, 0.75]) if len(x) else (0.0, 0.0, 0.0))",
                 f'state[{n}] = {{"median": _plain(med), "iqr": max(_plain(q3 - q1), 1e-9)}}'],
                [f"x = _num(X, {a})",
                 f'far = (x - state[{n}]["median"]).abs() > {z!r} * state[{n}]["iqr"]',
                 f'out[{n}] = far.astype("float64").where(x.notna())'])
    if k == "qrank":
        q = int(move.params[0]) if move.params else 20
        return (f"quantile rank in [0, 1] against {q} quantiles fitted on the fitting rows",
                [f"x = _num(X, {a}).dropna()",
                 f"edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, {q + 1})[1:-1])) if len(x) else []",
                 f'state[{n}] = {{"edges": [float(e) for e in edges]}}'],
                [f"x = _num(X, {a})",
                 f'edges = np.asarray(state[{n}]["edges"], dtype="float64")',
                 'pos = np.searchsorted(edges, x.to_numpy(), side="right") / max(len(edges), 1)',
                 f'out[{n}] = pd.Series(pos, index=X.index, dtype="float64").where(x.notna())'])
    raise ValueError(f"unknown move kind {k!r}; known: {', '.join(KINDS)}")


def _check(move: Move) -> None:
    if move.kind not in KINDS:
        raise ValueError(f"unknown move kind {move.kind!r}; known: {', '.join(KINDS)}")
    if len(move.columns) != ARITY.get(move.kind, 1) or not all(isinstance(c, str) for c in move.columns):
        raise ValueError(f"move {move.kind} needs {ARITY.get(move.kind, 1)} column name(s), got {move.columns!r}")


def _literal(text: str) -> str:
    """A Python string literal, double-quoted like the rest of the generated code when possible."""
    return f'"{text}"' if text.isprintable() and '"' not in text and "\\" not in text else repr(text)


def _comment(text: str) -> str:
    """Text that is safe inside a one-line comment."""
    return re.sub(r"[\r\n\x00-\x1f]+", " ", text).strip()


def render_program(moves: list[Move], rationale: str = "", redundant_r: float = MoveLimits.redundant_r) -> str:
    """A complete feature program applying ``moves`` in order (duplicate feature names dropped).

    ``redundant_r`` is the correlation a drop move's comment names (the limit it was proposed under).
    """
    kept: list[Move] = []
    names: set[str] = set()
    for move in moves:
        _check(move)
        key = move.feature_name() or f"drop:{move.columns[0]}"
        if key not in names:
            names.add(key)
            kept.append(move)
    manifest = manifest_line([[m.kind, list(m.columns), list(m.params)] for m in kept])
    features = [m for m in kept if m.kind != "drop"]
    drops = [m for m in kept if m.kind == "drop"]
    fit: list[str] = []
    transform: list[str] = []
    for move in features:
        comment, fit_lines, transform_lines = _section(move)
        head = f"# --- {_comment(move.feature_name() or '')}: {_comment(comment)}"
        if fit_lines:
            fit += ["", head] + fit_lines
        transform += ["", head] + transform_lines
    if drops:
        transform.append("")
        for move in drops:
            transform.append(f"# --- drop {_comment(move.columns[0])}: nearly a copy of another column "
                             f"(|r| > {redundant_r}); removing it drops redundant input")
        transform.append(f"out = out.drop(columns=[{', '.join(_literal(m.columns[0]) for m in drops)}])")
    needs_target = any(m.kind == "target_enc" for m in features)
    fit_body = (['target = pd.Series(np.asarray(y, dtype="float64"), index=X.index)'] if needs_target else []) \
        + ['state = {"columns": [str(c) for c in X.columns]}'] + fit + ["return state"]
    transform_body = ["out = X.copy()"] + transform + ["return out"]
    indent = lambda lines: "\n".join(" " * 8 + line if line else "" for line in lines)
    why = f"# Why: {_comment(rationale)}\n" if rationale.strip() else ""
    listing = "".join(f"#   - {_comment(m.describe())}\n" for m in kept) or "#   (none: identity)\n"
    return f'''"""Feature program written by efe's offline proposer from its move library (efe.proposer.tab_moves)."""

{EVOLVE_START}
{manifest}
# Moves, in order:
{listing}{why}import math

import numpy as np
import pandas as pd

{_HELPERS}

class FeatureProgram:
    """Each section below is one move; fit learns every statistic, transform treats rows one by one."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: pd.Series) -> dict:
{indent(fit_body)}

    def transform(self, X: pd.DataFrame, state: dict) -> pd.DataFrame:
{indent(transform_body)}
{EVOLVE_END}


def build_feature_program(seed: int = 0) -> FeatureProgram:
    return FeatureProgram(seed)
'''


def parse_moves(source: str) -> list[Move] | None:
    """The moves of a program rendered here; None without a (well-formed) manifest."""
    entries = read_manifest(source)
    if entries is None:
        return None
    try:
        moves = [Move(str(kind), tuple(str(c) for c in cols), tuple(params)) for kind, cols, params in entries]
        for move in moves:
            _check(move)
    except (ValueError, TypeError):
        return None
    return moves


# --------------------------------------------------------------------------- proposing


def propose(parent_source: str, context: dict, feedback: dict, rng: np.random.Generator,
            max_moves: int | None = None, kinds: tuple[str, ...] | None = None,
            limits: MoveLimits = MoveLimits()) -> tuple[str, str]:
    """One search step from the parent: add, remove or swap a move. Deterministic given ``rng``.

    ``kinds`` (a proposer role's slice of the library) limits what is added; the memory rules in
    ``feedback["rules"]`` (move descriptor -> helped / no effect / failed) reweight the candidates.
    ``feedback`` also holds the parent's ``valid``, ``importance`` (column -> importance on pool A)
    and ``delta_auc``; ``max_moves`` (default ``limits.max_moves``) caps the program's length.
    """
    max_moves = limits.max_moves if max_moves is None else max_moves
    current = parse_moves(parent_source) or []
    importance = feedback.get("importance") or None
    n_cols = int(context.get("n_columns") or len(context.get("columns", {})) or 1)
    limit = max(1, min(max_moves, 4 * n_cols))  # the gates allow at most 5x the input columns
    present = {m.feature_name() or f"drop:{m.columns[0]}" for m in current}
    available = [(m, w * rule_weight(feedback.get("rules"), move_key(m)))
                 for m, w in candidate_moves(context, importance, limits)
                 if (m.feature_name() or f"drop:{m.columns[0]}") not in present]
    in_role = [(m, w) for m, w in available if kinds is None or m.kind in kinds]
    if in_role or not current:
        available = in_role or available  # a role with nothing left to add may still remove or swap
    elif kinds is not None:
        available = []

    if not current and not available:
        raise NoMoveAvailable(f"no feature-engineering move applies to dataset {context.get('name')!r}")
    parent_valid = feedback.get("valid")
    if parent_valid is not None and not parent_valid and current:
        action = "remove_last"
    elif not current:
        action = "add"
    elif not available:
        action = "remove"
    elif len(current) >= limit:
        action = "remove" if rng.random() < 0.5 else "swap"
    else:
        u = rng.random()
        action = "add" if u < 0.65 else ("remove" if u < 0.85 else "swap")

    moves = list(current)
    if action == "remove_last":
        gone = moves.pop()
        return _result(limits, moves, f"remove {gone.describe()} (the parent was invalid)")
    if action == "add":
        new = pick(available, rng)
        return _result(limits, moves + [new], f"add {new.describe()}")
    gone = moves.pop(_pick_removal(moves, feedback, rng))
    if action == "remove":
        return _result(limits, moves, f"remove {gone.describe()}")
    choices = [(m, w) for m, w in available if m != gone]
    if not choices:
        return _result(limits, moves, f"remove {gone.describe()}")
    new = pick(choices, rng)
    return _result(limits, moves + [new], f"swap {gone.describe()} for {new.describe()}")


def _result(limits: MoveLimits, moves: list[Move], description: str) -> tuple[str, str]:
    return render_program(moves, description, limits.redundant_r), description


def move_key(move: Move) -> str:
    """A move as the memory rules name it: ``kind(column, ...)``."""
    return f"{move.kind}({', '.join(move.columns)})"


def _pick_removal(moves: list[Move], feedback: dict, rng: np.random.Generator) -> int:
    """Index of the move to remove: engineered columns with ~0 or negative importance first."""
    importance: dict[str, Any] = feedback.get("importance") or {}
    weights = []
    for move in moves:
        value = importance.get(move.feature_name() or "")
        if value is None or not math.isfinite(float(value)):
            weights.append(1.0)
        else:
            weights.append(3.0 if float(value) <= 5e-4 else 1.0 / (1.0 + 100.0 * float(value)))
    delta = feedback.get("delta_auc")
    if delta is not None and float(delta) < 0:
        weights[-1] *= 2.0  # the newest move is the likeliest cause of a loss
    w = np.asarray(weights)
    return int(rng.choice(len(moves), p=w / w.sum()))
