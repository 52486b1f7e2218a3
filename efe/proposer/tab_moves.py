"""Move library of the offline proposer: sound feature-engineering steps, rendered as programs.

A program written here is a list of moves (log, ratio, target encoding, ...) rendered into a
complete, readable feature program whose manifest comment lets the next generation recover the
list. ``propose`` is a real search operator: it adds, removes or swaps one move, weighted by the
dataset context and the evaluator's feedback, and needs no LLM. Every rendered program learns its
statistics in ``fit`` only and treats each row on its own in ``transform``, so it passes the gates.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, Callable, Mapping

import numpy as np

from efe.core.config import conf_section, dataclass_from_mapping, plain_dict
from efe.core.contracts import EVOLVE_END, EVOLVE_START
from efe.core.moves_manifest import MANIFEST as MANIFEST  # re-exported: the marker the rendered programs carry
from efe.core.moves_manifest import manifest_line, read_manifest
from efe.core.text_patterns import PATTERNS, TITLE_RE, WORD_RE
from efe.proposer.moves_common import NoMoveAvailable as NoMoveAvailable  # re-exported: what propose raises
from efe.proposer.moves_common import pick, rule_weight

KINDS = ("log", "ratio", "product", "diff", "freq", "target_enc", "group_mean", "group_dev", "bin",
         "missing", "len", "token", "drop", "date_part", "outlier", "qrank",
         "extract", "words", "has_word", "count", "rare", "combo", "te_oof", "group_std", "group_rank",
         "expand", "date_cyc", "square")
# How many columns a move reads (a group statistic: the value and one or two keys; a screened
# expansion: two or more numeric columns).
ARITY: dict[str, tuple[int, ...]] = {"ratio": (2,), "product": (2,), "diff": (2,), "combo": (2,),
                                     "group_mean": (2, 3), "group_dev": (2, 3), "group_std": (2, 3),
                                     "group_rank": (2, 3)}
GROUP_KINDS = ("group_mean", "group_dev", "group_std", "group_rank")
DEFAULT_PARAMS: dict[str, tuple] = {"bin": (5,), "target_enc": (20,), "outlier": (3.0,), "qrank": (20,)}
DATE_PARTS = ("year", "month", "dayofweek")
CYCLES = {"month": 12.0, "dayofweek": 7.0}  # calendar parts that wrap around, and their period
ISO_DATE = r"^\d{4}-\d{2}-\d{2}"
# Base weight of each kind: how often it helps a tree scorer in practice (monotone maps such as
# log and bins change little for trees; encodings and interactions change the split structure).
# A kind with several parameter variants shares its weight among them.
BASE_WEIGHT = {"log": 0.6, "ratio": 1.0, "product": 0.6, "diff": 0.6, "freq": 0.4, "target_enc": 0.9,
               "group_mean": 0.4, "group_dev": 0.6, "bin": 0.25, "missing": 0.5, "len": 0.3,
               "token": 1.2, "drop": 0.3, "date_part": 0.8, "outlier": 0.4, "qrank": 0.3,
               "extract": 1.2, "words": 0.3, "has_word": 0.5, "count": 0.4, "rare": 0.4, "combo": 0.6,
               "te_oof": 0.9, "group_std": 0.4, "group_rank": 0.4, "expand": 1.0, "date_cyc": 0.5,
               "square": 0.6}
SCREEN_OPS = ("ratio", "product", "diff", "all")
# Categorical columns written by a move, which later moves of the same program may encode or group by.
CATEGORICAL_OUTPUT = ("token", "extract", "rare", "combo")
DERIVED_INFO = 0.15  # informativeness assumed for a derived column (the context describes original columns only)


@dataclass(frozen=True)
class MoveLimits:
    """How wide the library looks and how long a program may grow (conf ``proposer.moves``).

    The tuples are the parameter variants a move is offered with (each variant is a move of its own).
    """

    pair_top: int           # the most informative numeric columns combined pairwise
    group_top: int          # numeric columns and grouping columns crossed for group statistics
    max_missing: float      # columns missing more often than this get no derived feature (it could be
                            # all-NaN on the small gate sample)
    redundant_r: float   # |correlation| above which one of the two columns is offered for dropping
    max_moves: int          # moves in one program (and at most 4x the input columns)
    column_factor: int      # new columns of one program, at most this many times the input columns
    bins: tuple            # quantile bins of a numeric column
    min_counts: tuple         # text moves: a token kept when seen this often in fit
    max_levels: int                # text moves: at most this many tokens kept
    top_words: int                  # presence of each of the most frequent words
    rare_shares: tuple   # levels rarer than this share of fit rows are grouped as "rare"
    te_folds: tuple            # out-of-fold target encoding: folds inside fit
    te_smoothing: tuple   # ... the smoothing weights it chooses among, out of fold
    rank_quantiles: tuple       # rank of a value within its group, against this many quantiles
    screen_top_k: tuple        # screened expansion: pairwise features kept by the in-fit screen
    group_keys: int                 # group statistics over one key, or up to this many keys together
    fallback_tries: int            # a repeated program: children, then grandchildren, tried this often
    best_first: float              # an add takes the heaviest move not yet tried on this parent this often

    @classmethod
    def from_mapping(cls, m: Mapping[str, Any] | None) -> "MoveLimits":
        """Keys ``m`` lacks (or all, when None) come from ``conf/tab.yaml``'s ``proposer.moves``."""
        merged = {**conf_section("tab", "proposer", "moves"), **(plain_dict(m) or {})}
        limits = dataclass_from_mapping(cls, merged)
        lists = {f: tuple(getattr(limits, f)) for f in cls.__dataclass_fields__
                 if isinstance(getattr(limits, f), list)}
        return replace(limits, **lists) if lists else limits


@lru_cache(maxsize=1)
def default_limits() -> MoveLimits:
    """The library's limits as ``conf/tab.yaml`` sets them (``proposer.moves``), for a caller outside a run."""
    return MoveLimits.from_mapping(conf_section("tab", "proposer", "moves"))


@dataclass(frozen=True)
class Move:
    kind: str
    columns: tuple[str, ...]
    params: tuple = ()

    def feature_name(self) -> str | None:
        """The column this move adds, or the stem of the columns it adds (None for "drop")."""
        c = self.columns
        p = self.params
        keys = "_and_".join(c[1:])
        names = {
            "log": lambda: f"log_{c[0]}",
            "ratio": lambda: f"{c[0]}_over_{c[1]}",
            "product": lambda: f"{c[0]}_times_{c[1]}",
            "diff": lambda: f"{c[0]}_minus_{c[1]}",
            "freq": lambda: f"freq_{c[0]}",
            "target_enc": lambda: f"te_{c[0]}",
            "group_mean": lambda: f"{c[0]}_mean_by_{keys}",
            "group_dev": lambda: f"{c[0]}_dev_by_{keys}",
            "bin": lambda: f"{c[0]}_bin{p[0] if p else 5}",
            "square": lambda: f"{c[0]}_centred_sq",
            "missing": lambda: f"{c[0]}_is_missing",
            "len": lambda: f"{c[0]}_len",
            "token": lambda: f"{c[0]}_title",
            "drop": lambda: None,
            "date_part": lambda: f"{c[0]}_{p[0] if p else 'month'}",
            "outlier": lambda: f"{c[0]}_is_outlier",
            "qrank": lambda: f"{c[0]}_qrank",
            "extract": lambda: f"{c[0]}_{p[0]}" + (f"_min{p[1]}" if len(p) > 1 else ""),
            "words": lambda: f"{c[0]}_words",
            "has_word": lambda: f"{c[0]}_has_word{p[0]}",
            "count": lambda: f"count_{c[0]}",
            "rare": lambda: f"{c[0]}_rare{_percent(p[0])}",
            "combo": lambda: f"{c[0]}_x_{c[1]}",
            "te_oof": lambda: f"te_oof{p[0]}_{c[0]}",
            "group_std": lambda: f"{c[0]}_std_by_{keys}",
            "group_rank": lambda: f"{c[0]}_rank{p[0]}_by_{keys}",
            "expand": lambda: f"screen_{p[0]}{p[1]}",
            "date_cyc": lambda: f"{c[0]}_{p[0]}_cyc",
        }
        if self.kind not in names:
            raise ValueError(f"unknown move kind {self.kind!r}; known: {', '.join(KINDS)}")
        return names[self.kind]()

    def outputs(self) -> list[str]:
        """Every column this move adds (a screened expansion and a cyclic date part add several)."""
        name = self.feature_name()
        if name is None:
            return []
        if self.kind == "expand":
            return [f"{name}_{i + 1}" for i in range(int(self.params[1]))]
        if self.kind == "date_cyc":
            return [f"{name}_sin", f"{name}_cos"]
        return [name]

    def describe(self) -> str:
        target = ", ".join(self.outputs()) or "(column removed)"
        params = f"; {', '.join(str(x) for x in self.params)}" if self.params and self.kind not in DEFAULT_PARAMS else ""
        return f"{self.kind}({', '.join(self.columns)}{params}) -> {target}"


def _percent(share: Any) -> str:
    return f"{100 * float(share):g}".replace(".", "p")


def _key(move: Move) -> str:
    """What a program may hold only once: the move's feature name (a drop: the column it drops)."""
    return move.feature_name() or f"drop:{move.columns[0]}"


# --------------------------------------------------------------------------- candidates


def candidate_moves(context: dict, importance: dict[str, float] | None = None,
                    limits: MoveLimits | None = None, current: list[Move] | None = None) -> list[tuple[Move, float]]:
    """Every sensible move for this dataset, with a positive weight from context and feedback.

    ``current`` (the program's moves so far) adds the moves that build on them: the categorical
    columns they write (a title, a surname, a combination) can be encoded and grouped by.
    """
    limits = limits or default_limits()
    cols: dict[str, dict] = context.get("columns", {})
    n_rows = int(context.get("n_rows") or 0)
    info = {c: _informativeness(i, context) for c, i in cols.items()}
    raw: list[tuple[Move, float]] = []

    def add(kind: str, columns: tuple[str, ...], base: float | None = None, variants: tuple = ()) -> None:
        weight = BASE_WEIGHT[kind] if base is None else base
        if not variants:
            raw.append((Move(kind, columns, DEFAULT_PARAMS.get(kind, ())), weight))
            return
        for params in variants:
            raw.append((Move(kind, columns, params if isinstance(params, tuple) else (params,)),
                        weight / len(variants)))

    usable = {c: i for c, i in cols.items() if (i.get("missing_rate") or 0.0) <= limits.max_missing}
    numeric = [c for c, i in usable.items() if i.get("kind") == "numeric" and i.get("n_unique", 0) >= 3]
    ranked = sorted(numeric, key=lambda c: -(info[c] + 5 * max(0.0, (importance or {}).get(c, 0.0))))
    for c in numeric:
        i = cols[c]
        if (i.get("min") or 0.0) >= 0 and (i.get("skew") or 0.0) > 1.0:
            add("log", (c,))
        if i.get("n_unique", 0) > 10:
            add("bin", (c,), variants=tuple((b,) for b in limits.bins))
        if i.get("n_unique", 0) > 5:
            add("square", (c,))
            add("qrank", (c,))
        if abs(i.get("skew") or 0.0) > 1.0:
            add("outlier", (c,))
        if 3 <= i.get("n_unique", 0) <= max(3, n_rows // 4):
            add("count", (c,), BASE_WEIGHT["count"] / 2)  # a value shared by many rows (a fare, a group size)
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
    pair_info = _pair_signals(context)
    for op, a, b in pair_info:  # the pairs the context found carrying signal, beyond the most informative columns
        if a in numeric and b in numeric and (op != "ratio" or _mostly_nonzero(cols[b])):
            add(op, (a, b) if op == "ratio" or order[a] < order[b] else (b, a))
    ordered_target = context.get("task", "binary") != "multiclass"  # class codes have no mean or order
    if len(top) >= 2 and ordered_target:
        n_pairs = len(top) * (len(top) - 1) // 2
        screens = tuple((op, k) for op in SCREEN_OPS for k in limits.screen_top_k if k <= _screen_size(op, n_pairs))
        add("expand", tuple(top), variants=screens)
    categorical = [c for c, i in usable.items()
                   if i.get("kind") == "categorical" and not i.get("mostly_unique") and i.get("n_unique", 0) >= 2]
    levels = {c: int(cols[c].get("n_unique", 0)) for c in categorical}
    derived = _derived_categoricals(current or [])
    grouped_rare = {m.feature_name() for m in current or [] if m.kind == "rare"}  # no rare grouping of a grouping
    for c, n in list(levels.items()) + [(d, 0) for d in derived]:
        base = 1.0 if c in levels else 1.5  # an encoding of a derived column: the composition search's reach
        if n >= 3 or c in derived:
            add("freq", (c,), BASE_WEIGHT["freq"] * base)
            add("count", (c,), BASE_WEIGHT["count"] * base)
            if ordered_target and (c in derived or n <= max(3, n_rows // 20)):
                weight = 1.0 + (min(n, 20) / 20 if n else 0.5)
                add("target_enc", (c,), BASE_WEIGHT["target_enc"] * weight * base)
                add("te_oof", (c,), BASE_WEIGHT["te_oof"] * weight * base,
                    variants=tuple((k, *limits.te_smoothing) for k in limits.te_folds))
        if (n >= 4 or c in derived) and c not in grouped_rare:
            add("rare", (c,), BASE_WEIGHT["rare"] * base, variants=tuple((x,) for x in limits.rare_shares))
    booleans = [c for c, i in usable.items() if i.get("kind") == "boolean"]
    small = sorted([c for c in categorical if levels[c] <= 50] + booleans, key=lambda c: -info[c])[:limits.group_top]
    for k, a in enumerate(sorted(small, key=order.get)):
        for b in sorted(small, key=order.get)[k + 1:]:
            add("combo", (a, b))
    groupers = sorted([c for c in categorical if levels[c] <= 50] + booleans, key=lambda c: -info[c])[:limits.group_top]
    key_sets = [(g,) for g in groupers + derived]
    if limits.group_keys >= 2:
        key_sets += [(g, h) for k, g in enumerate(groupers) for h in groupers[k + 1:]]
    for a in ranked[:limits.group_top]:
        for keys in key_sets:
            scale = 1.0 if len(keys) == 1 and keys[0] not in derived else 0.75
            add("group_mean", (a, *keys), BASE_WEIGHT["group_mean"] * scale)
            add("group_dev", (a, *keys), BASE_WEIGHT["group_dev"] * scale)
            add("group_std", (a, *keys), BASE_WEIGHT["group_std"] * scale)
            add("group_rank", (a, *keys), BASE_WEIGHT["group_rank"] * scale,
                variants=tuple((q,) for q in limits.rank_quantiles))
    for c, i in cols.items():
        examples = [str(e) for e in i.get("examples", [])]
        if i.get("kind") == "datetime" or (examples and all(re.match(ISO_DATE, e) for e in examples)):
            for part in DATE_PARTS:
                raw.append((Move("date_part", (c,), (part,)), BASE_WEIGHT["date_part"]))
            for part in CYCLES:
                raw.append((Move("date_cyc", (c,), (part,)), BASE_WEIGHT["date_cyc"]))
            continue
        if 0.0 < (i.get("missing_rate") or 0.0) < 1.0:
            add("missing", (c,), BASE_WEIGHT["missing"] + float(i["missing_rate"]))
        text = examples if i.get("mostly_unique") else (list(i.get("top_values") or {}) if i.get("n_unique", 0) > 20
                                                        else [])
        if i.get("kind") == "categorical" and text:
            _text_moves(c, text, add, limits, bool(i.get("mostly_unique")))
    col_imp = _column_importance(importance, [m for m, _ in raw])
    out: list[tuple[Move, float]] = []
    seen: set[Move] = set()
    for move, base in raw:
        names = set(move.outputs())
        if move in seen or names & set(cols) or names & set(derived):
            continue  # a clash would overwrite an original (or derived) column
        seen.add(move)
        mean_info = sum(info.get(c, DERIVED_INFO) for c in move.columns) / len(move.columns)
        sq_corr = cols.get(move.columns[0], {}).get("target_corr_sq") if move.kind == "square" else None
        if sq_corr is not None:  # a U shape has no linear correlation (and a line gains nothing squared): its own
            mean_info = abs(float(sq_corr))
        if move.kind in ("date_part", "date_cyc"):
            mean_info = max(mean_info, 0.1)  # text dates show no correlation before they are parsed
        if move.kind in ("extract", "token", "words", "has_word"):
            mean_info = max(mean_info, DERIVED_INFO)  # nor does text before it is parsed ...
            signal = _token_signal(cols.get(move.columns[0], {}), move)
            if signal is not None:  # ... unless the context measured what this pattern's tokens say
                mean_info = signal
        if move.kind in PAIR_KINDS:  # a pair counts by what it carries beyond its columns' own trends
            mean_info = 0.5 * mean_info + 2.0 * pair_info.get((move.kind, *move.columns), 0.0)
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


def _text_moves(c: str, examples: list[str], add: Callable[..., None], limits: MoveLimits, unique: bool) -> None:
    """The moves of a text column: a title, words, a prefix or suffix, a domain, digits, length, word count."""
    def share(pattern: str) -> float:
        return sum(bool(re.search(pattern, e)) for e in examples) / len(examples)

    spaced = share(r"\S\s+\S") >= 0.5
    if unique:
        add("len", (c,))
    if share(TITLE_RE) >= 0.5:
        add("token", (c,))
    for pattern in ("title", "prefix", "suffix", "domain"):
        if share(PATTERNS[pattern]) >= 0.5 and (pattern != "suffix" or spaced):
            add("extract", (c,), variants=tuple((pattern, m) for m in limits.min_counts))
    if share(PATTERNS["digits"]) >= 0.5:
        add("extract", (c,), BASE_WEIGHT["extract"] / 2, variants=(("digits",),))
    if spaced:
        add("words", (c,))
        add("has_word", (c,), variants=tuple((r,) for r in range(limits.top_words)))


def _token_signal(info: dict, move: Move) -> float | None:
    """What the context measured for the tokens this text move extracts (None: not measured)."""
    pattern = "token" if move.kind == "token" else (move.params[0] if move.kind == "extract" else None)
    value = (info.get("token_signal") or {}).get(pattern) if pattern else None
    return None if value is None else float(value)


PAIR_KINDS = ("ratio", "product", "diff")


def _pair_signals(context: dict) -> dict[tuple[str, str, str], float]:
    """(kind, a, b) -> the partial rank correlation the context measured for the pair (a product or a
    difference under both column orders; a ratio a/b as written)."""
    out: dict[tuple[str, str, str], float] = {}
    for entry in context.get("pair_signals") or []:
        try:
            a, op, b, r = entry
        except (TypeError, ValueError):
            continue
        if op not in PAIR_KINDS or r is None:
            continue
        keys = [(op, str(a), str(b))] + ([] if op == "ratio" else [(op, str(b), str(a))])
        for key in keys:
            out[key] = max(out.get(key, 0.0), float(r))
    return out


def _screen_size(op: str, n_pairs: int) -> int:
    """Candidate features a screened expansion scores (a ratio both ways; all: ratios, products, differences)."""
    return {"ratio": 2, "product": 1, "diff": 1, "all": 4}[op] * n_pairs


def _derived_categoricals(moves: list[Move]) -> list[str]:
    """Categorical columns the program's moves write, which later moves may build on."""
    return [m.feature_name() for m in moves
            if m.kind in CATEGORICAL_OUTPUT and not (m.kind == "extract" and m.params[0] == "digits")]


STATELESS_KINDS = ("log", "ratio", "product", "diff", "missing", "len", "token", "drop", "date_part")


def _informativeness(info: dict, context: dict) -> float:
    """|correlation with the target| for numerics, largest shift of the positive rate (a regression target:
    of the target mean, in standard deviations) for categories."""
    if info.get("kind") == "numeric":
        return abs(float(info.get("target_corr") or 0.0))
    if info.get("target_mean_by_top_value"):
        stats = context.get("target_stats") or {}
        mean, sd = float(stats.get("mean") or 0.0), float(stats.get("std") or 0.0) or 1.0
        return max((min(abs(float(v) - mean) / sd, 1.0) for v in info["target_mean_by_top_value"].values()
                    if v is not None), default=0.0)
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
        for name in move.outputs():
            if name in importance:
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
LEVELS = {levels}
TITLE = r"{title}"
PATTERNS = {patterns}
WORD = r"{word}"


def _num(X, col):
    """A column as float64; text that is not a number becomes NaN."""
    return pd.to_numeric(X[col], errors="coerce").astype("float64")


def _keys(X, col):
    """Category levels as text; a missing value is a level of its own."""
    s = X[col]
    return s.astype(str).where(s.notna(), MISSING)


def _groups(X, cols):
    """The group of each row: the levels of one or more key columns, joined."""
    keys = _keys(X, cols[0])
    for col in cols[1:]:
        keys = keys + " | " + _keys(X, col)
    return keys


def _finite(values):
    """Overflow and extreme magnitudes become NaN: no feature is ever inf or beyond the gates' cap."""
    values = values.astype("float64")
    return values.where(np.isfinite(values) & (values.abs() <= LIMIT))


def _plain(value, default=0.0):
    """A fitted number as a plain float (NaN, e.g. from an empty group, becomes the default)."""
    value = float(value)
    return value if math.isfinite(value) else default


def _pair(X, op, a, b):
    """One pairwise feature of a screened expansion (a ratio with a denominator near 0 is NaN)."""
    x, z = _num(X, a), _num(X, b)
    if op == "ratio":
        return _finite(x / z.where(z.abs() > 1e-9))
    if op == "product":
        return _finite(x * z)
    return _finite(x - z)
'''.replace("{title}", TITLE_RE).replace("{patterns}", repr(PATTERNS)).replace("{word}", WORD_RE)


def _section(move: Move, D: str) -> tuple[str, list[str], list[str]]:
    """(comment, fit lines, transform lines) of one move; N is the state key and new column.

    Fit lines read the input frame ``D`` (``X``, or ``out`` when the program builds on columns its
    own moves wrote); transform lines read ``out``, which starts as a copy of ``X``.
    """
    c = [_literal(x) for x in move.columns]
    n = _literal(move.feature_name() or "")
    a = c[0]
    b = c[1] if len(c) > 1 else None
    k = move.kind
    p = move.params
    if k == "log":
        return ("log(1 + x - shift) compresses a long right tail",
                [f'state[{n}] = {{"shift": min(0.0, _plain(_num({D}, {a}).min()))}}'],
                [f'out[{n}] = _finite(np.log1p((_num(out, {a}) - state[{n}]["shift"]).clip(lower=0.0)))'])
    if k == "ratio":
        return ("ratio; a denominator within eps of 0 gives NaN, never inf",
                [f'state[{n}] = {{"eps": max(1e-9, 1e-6 * _plain(_num({D}, {b}).abs().median()))}}'],
                [f"den = _num(out, {b})",
                 f'out[{n}] = _finite(_num(out, {a}) / den.where(den.abs() > state[{n}]["eps"]))'])
    if k == "product":
        return ("product: an interaction trees find hard to build from axis splits", [],
                [f"out[{n}] = _finite(_num(out, {a}) * _num(out, {b}))"])
    if k == "diff":
        return ("difference of two related quantities", [],
                [f"out[{n}] = _finite(_num(out, {a}) - _num(out, {b}))"])
    if k in ("freq", "count"):
        share = k == "freq"
        return (("frequency encoding: share of fitting rows at the level (0 for unseen levels)" if share else
                 "count encoding: fitting rows at the level (0 for unseen levels)"),
                [f"counts = _keys({D}, {a}).value_counts(normalize={share})",
                 f'state[{n}] = {{"{k}": {{str(key): float(v) for key, v in counts.items()}}}}'],
                [f'out[{n}] = _keys(out, {a}).map(state[{n}]["{k}"]).astype("float64").fillna(0.0)'])
    if k == "target_enc":
        m = float(p[0]) if p else 20.0
        return (f"positive rate (or target mean) per level, shrunk to the overall one with weight {m:g} (unseen: overall)",
                [f'counts = target.groupby(_keys({D}, {a}).to_numpy()).agg(["sum", "count"])',
                 "prior = _plain(target.mean())",
                 f'rate = (counts["sum"] + {m!r} * prior) / (counts["count"] + {m!r})',
                 f'state[{n}] = {{"prior": prior, "rate": {{str(key): float(v) for key, v in rate.items()}}}}'],
                [f'rate = _keys(out, {a}).map(state[{n}]["rate"]).astype("float64")',
                 f'out[{n}] = rate.fillna(state[{n}]["prior"])'])
    if k == "te_oof":
        folds, grid = int(p[0]), [float(x) for x in p[1:]] or [20.0]
        return (f"positive rate (or target mean) per level; the shrinkage weight (one of "
                f"{', '.join(f'{x:g}' for x in grid)}) is chosen by {folds}-fold out-of-fold log loss (squared error "
                "for a numeric target) inside fit (unseen: overall)",
                [f"keys = _keys({D}, {a}).to_numpy()",
                 "t = target.to_numpy()",
                 "binary = bool(np.isin(t, (0, 1)).all())",
                 "prior = _plain(t.mean())",
                 f"fold = np.random.default_rng(self.seed).permutation(len(t)) % {folds}",
                 f"best, best_loss = {grid[0]!r}, math.inf",
                 f"for m in {grid!r}:",
                 "    pred = np.full(len(t), prior)",
                 f"    for k in range({folds}):",
                 "        fit_rows, held = fold != k, fold == k",
                 "        if not held.any() or not fit_rows.any():",
                 "            continue",
                 "        p_k = _plain(t[fit_rows].mean(), prior)",
                 '        s = pd.Series(t[fit_rows]).groupby(keys[fit_rows]).agg(["sum", "count"])',
                 '        rate = (s["sum"] + m * p_k) / (s["count"] + m)',
                 '        pred[held] = pd.Series(keys[held]).map(rate).astype("float64").fillna(p_k).to_numpy()',
                 "    if binary:  # 0/1 labels: log loss; a regression target: squared error",
                 "        pred = np.clip(pred, 1e-6, 1 - 1e-6)",
                 "        loss = -float(np.mean(t * np.log(pred) + (1 - t) * np.log(1 - pred)))",
                 "    else:",
                 "        loss = float(np.mean((t - pred) ** 2))",
                 "    if loss < best_loss - 1e-12:",
                 "        best, best_loss = m, loss",
                 'counts = target.groupby(keys).agg(["sum", "count"])',
                 'rate = (counts["sum"] + best * prior) / (counts["count"] + best)',
                 f'state[{n}] = {{"prior": prior, "weight": float(best), '
                 '"rate": {str(key): float(v) for key, v in rate.items()}}'],
                [f'rate = _keys(out, {a}).map(state[{n}]["rate"]).astype("float64")',
                 f'out[{n}] = rate.fillna(state[{n}]["prior"])'])
    if k in GROUP_KINDS:
        keys = f"_groups(@D@, [{', '.join(c[1:])}])"
        fit = [f"x = _num({D}, {a})", f"keys = {keys.replace('@D@', D)}"]
        if k in ("group_mean", "group_dev"):
            fit += ["overall = _plain(x.mean())",
                    "means = x.groupby(keys.to_numpy()).mean()",
                    f'state[{n}] = {{"overall": overall, "mean": {{str(key): _plain(v, overall) for key, v in means.items()}}}}']
            mean = f'mean = {keys.replace("@D@", "out")}.map(state[{n}]["mean"]).astype("float64").fillna(state[{n}]["overall"])'
            if k == "group_mean":
                return ("mean of the numeric column in the row's group (unseen groups: overall mean)", fit,
                        [mean, f"out[{n}] = mean"])
            return ("deviation from the group mean: how unusual the row is within its group", fit,
                    [mean, f"out[{n}] = _finite(_num(out, {a}) - mean)"])
        if k == "group_std":
            return ("spread (standard deviation) of the numeric column in the row's group (small or unseen "
                    "groups: overall)",
                    fit + ["overall = _plain(x.std())",
                           "spread = x.groupby(keys.to_numpy()).std()",
                           f'state[{n}] = {{"overall": overall, "std": {{str(key): _plain(v, overall) for key, v in spread.items()}}}}'],
                    [f'out[{n}] = {keys.replace("@D@", "out")}.map(state[{n}]["std"]).astype("float64").fillna(state[{n}]["overall"])'])
        q = int(p[0])
        return (f"rank of the value within its group, against {q} quantiles of the group fitted on the fitting rows",
                fit + [f"inner = np.linspace(0.0, 1.0, {q + 1})[1:-1]",
                       "edges = {}",
                       "for key, values in x.groupby(keys.to_numpy()):",
                       "    values = values.dropna()",
                       "    if len(values) >= 2:",
                       "        edges[str(key)] = [float(e) for e in np.unique(np.quantile(values, inner))]",
                       "whole = x.dropna()",
                       f'state[{n}] = {{"edges": edges, "overall": [float(e) for e in np.unique(np.quantile(whole, inner))] '
                       'if len(whole) else []}'],
                [f"x = _num(out, {a})",
                 f"keys = {keys.replace('@D@', 'out')}",
                 "pos = np.full(len(x), np.nan)",
                 "for key in pd.unique(keys):  # each row against its own group's quantiles",
                 "    rows = (keys == key).to_numpy()",
                 f'    edges = np.asarray(state[{n}]["edges"].get(key, state[{n}]["overall"]), dtype="float64")',
                 '    pos[rows] = np.searchsorted(edges, x.to_numpy()[rows], side="right") / max(len(edges), 1)',
                 f'out[{n}] = pd.Series(pos, index=out.index, dtype="float64").where(x.notna())'])
    if k == "square":
        return ("squared distance from the fitted median: a U-shaped effect a linear model cannot draw",
                [f'state[{n}] = {{"centre": _plain(_num({D}, {a}).median())}}'],
                [f'out[{n}] = _finite((_num(out, {a}) - state[{n}]["centre"]) ** 2)'])
    if k == "bin":
        bins = int(p[0]) if p else 5
        return (f"{bins} quantile bins with edges fitted on the fitting rows (NaN stays NaN)",
                [f"x = _num({D}, {a}).dropna()",
                 f"inner = np.linspace(0.0, 1.0, {bins + 1})[1:-1]",
                 "edges = np.unique(np.quantile(x, inner)) if len(x) else []",
                 f'state[{n}] = {{"edges": [float(e) for e in edges]}}'],
                [f"x = _num(out, {a})",
                 f'edges = np.asarray(state[{n}]["edges"], dtype="float64")',
                 'codes = np.searchsorted(edges, x.to_numpy(), side="right")',
                 f'out[{n}] = pd.Series(codes, index=out.index, dtype="float64").where(x.notna())'])
    if k == "missing":
        return ("missing-value indicator: missingness itself can carry signal", [],
                [f'out[{n}] = out[{a}].isna().astype("float64")'])
    if k == "len":
        return ("text length of a near-unique text column", [],
                [f"s = out[{a}]",
                 f'out[{n}] = s.astype(str).str.len().astype("float64").where(s.notna())'])
    if k == "words":
        return ("number of words of a text column", [],
                [f"s = out[{a}]",
                 f'out[{n}] = s.astype(str).str.split().str.len().astype("float64").where(s.notna())'])
    if k == "token":
        return ("title-like token ('Mr.', 'Dr.'); tokens seen < 10 times in fit become 'other'",
                [f"found = {D}[{a}].astype(str).str.extract(TITLE, expand=False).dropna()",
                 "counts = found.value_counts()",
                 f'state[{n}] = {{"tokens": sorted(str(t) for t in counts[counts >= 10].index[:20])}}'],
                [f"tok = out[{a}].astype(str).str.extract(TITLE, expand=False)",
                 f'out[{n}] = tok.where(tok.isin(state[{n}]["tokens"]), "other").where(tok.notna(), "none")'])
    if k == "extract":
        pattern = str(p[0])
        if pattern == "digits":
            return ("the first run of digits in the text, as a number (none: NaN)", [],
                    [f'digits = out[{a}].astype(str).str.extract(PATTERNS["digits"], expand=False)',
                     f'out[{n}] = _finite(pd.to_numeric(digits, errors="coerce")).where(out[{a}].notna())'])
        m = int(p[1])
        return (f"'{pattern}' token of the text; the tokens seen at least {m} times in fit are kept, the rest "
                "become 'other' (no token: 'none')",
                [f's = {D}[{a}]',
                 f'found = s.astype(str).where(s.notna()).str.extract(PATTERNS["{pattern}"], expand=False).dropna()',
                 "counts = found.str.strip().value_counts()",
                 "kept = counts[counts >= " + str(m) + "]",
                 "kept = kept.rename_axis(\"token\").reset_index(name=\"n\").sort_values([\"n\", \"token\"], "
                 "ascending=[False, True])",
                 f'state[{n}] = {{"tokens": sorted(str(t) for t in kept["token"].head(LEVELS))}}'],
                [f"s = out[{a}]",
                 f'tok = s.astype(str).str.extract(PATTERNS["{pattern}"], expand=False).str.strip()',
                 "tok = tok.where(s.notna())",
                 f'out[{n}] = tok.where(tok.isin(state[{n}]["tokens"]), "other").where(tok.notna(), "none")'])
    if k == "has_word":
        r = int(p[0])
        return (f"presence of the word held by the most fitting rows, rank {r + 1} (ties: alphabetical; a word "
                "in every row does not count)",
                [f"texts = {D}[{a}].dropna().astype(str).str.lower()",
                 "pairs = texts.str.findall(WORD).explode().dropna().reset_index().drop_duplicates()",
                 "rows = pairs.iloc[:, 1].value_counts()  # rows holding each word",
                 "rows = rows[rows < len(texts)]  # a word in every row tells the rows nothing",
                 "ranked = rows.rename_axis(\"word\").reset_index(name=\"n\")",
                 "ranked = ranked.sort_values([\"n\", \"word\"], ascending=[False, True])[\"word\"].tolist()",
                 f'state[{n}] = {{"word": str(ranked[{r}]) if len(ranked) > {r} else ""}}'],
                [f"s = out[{a}]",
                 f'word = state[{n}]["word"]  # "" when fit found no word: never present',
                 'found = s.astype(str).str.lower().str.contains(r"(?<![a-z])" + word + r"(?![a-z])", regex=True) '
                 '& (word != "")',
                 f'out[{n}] = found.astype("float64").where(s.notna())'])
    if k == "rare":
        share = float(p[0])
        return (f"levels below {share:g} of the fitting rows grouped as 'rare' (unseen levels too)",
                [f"share = _keys({D}, {a}).value_counts(normalize=True)",
                 f'state[{n}] = {{"levels": sorted(str(key) for key, v in share.items() if v >= {share!r})}}'],
                [f"keys = _keys(out, {a})",
                 f'out[{n}] = keys.where(keys.isin(state[{n}]["levels"]), "rare")'])
    if k == "combo":
        return ("the two categories together: one level per combination", [],
                [f"out[{n}] = _groups(out, [{a}, {b}])"])
    if k == "expand":
        op, top = str(p[0]), int(p[1])
        ops = ["ratio", "product", "diff"] if op == "all" else [op]
        names = ", ".join(_literal(x) for x in move.outputs())
        return (f"expand then select: every pairwise {op} of {', '.join(move.columns)} is scored in fit by how well "
                f"it ranks the fitting rows' labels (|AUC - 0.5|; |rank correlation| / 2 for a numeric target); "
                f"the best {top} are kept",
                ["t = target.to_numpy()",
                 "binary = bool(np.isin(t, (0, 1)).all())",
                 f"cols = [{', '.join(c)}]",
                 "scored = []",
                 "for i, u in enumerate(cols):",
                 "    for v in cols[i + 1:]:",
                 f"        for op in {ops!r}:",
                 "            for first, second in ([(u, v), (v, u)] if op == \"ratio\" else [(u, v)]):",
                 f"                values = _pair({D}, op, first, second).to_numpy()",
                 "                ok = np.isfinite(values)",
                 "                pos, neg = int((t[ok] == 1).sum()), int((t[ok] != 1).sum())",
                 "                score = -1.0",
                 "                if not binary and ok.sum() > 2 and np.ptp(values[ok]) > 0 and np.ptp(t[ok]) > 0:",
                 "                    rv, rt = pd.Series(values[ok]).rank(), pd.Series(t[ok]).rank()",
                 "                    score = abs(float(np.corrcoef(rv, rt)[0, 1])) / 2",
                 "                elif binary and pos and neg and np.ptp(values[ok]) > 0:",
                 "                    r = pd.Series(values[ok]).rank().to_numpy()",
                 "                    auc = (r[t[ok] == 1].sum() - pos * (pos + 1) / 2) / (pos * neg)",
                 "                    score = abs(float(auc) - 0.5)",
                 "                scored.append((score, op, first, second))",
                 f"state[{n}] = {{\"pairs\": [[op, u, v] for _, op, u, v in sorted(scored, reverse=True)[:{top}]]}}"],
                [f"for name, (op, u, v) in zip([{names}], state[{n}][\"pairs\"]):",
                 "    out[name] = _pair(out, op, u, v)"])
    if k == "date_part":
        part = str(p[0]) if p else "month"
        return (f"calendar part '{part}' of a date parsed row by row (ISO text or datetime; unparseable: NaN)", [],
                [f'when = pd.to_datetime(out[{a}], errors="coerce", format="ISO8601", utc=True)',
                 f'out[{n}] = getattr(when.dt, {_literal(part)}).astype("float64")'])
    if k == "date_cyc":
        part = str(p[0])
        period = CYCLES[part]
        sin, cos = (_literal(x) for x in move.outputs())
        return (f"calendar part '{part}' on a circle (period {period:g}): its last and first values are neighbours", [],
                [f'when = pd.to_datetime(out[{a}], errors="coerce", format="ISO8601", utc=True)',
                 f'angle = 2 * math.pi * getattr(when.dt, {_literal(part)}).astype("float64") / {period!r}',
                 f"out[{sin}] = np.sin(angle)",
                 f"out[{cos}] = np.cos(angle)"])
    if k == "outlier":
        z = float(p[0]) if p else 3.0
        return (f"outlier flag: more than {z:g} IQRs from the median fitted on the fitting rows",
                [f"x = _num({D}, {a}).dropna()",
                 "q1, med, q3 = (np.quantile(x, [0.25, 0.5, 0.75]) if len(x) else (0.0, 0.0, 0.0))",
                 f'state[{n}] = {{"median": _plain(med), "iqr": max(_plain(q3 - q1), 1e-9)}}'],
                [f"x = _num(out, {a})",
                 f'far = (x - state[{n}]["median"]).abs() > {z!r} * state[{n}]["iqr"]',
                 f'out[{n}] = far.astype("float64").where(x.notna())'])
    if k == "qrank":
        q = int(p[0]) if p else 20
        return (f"quantile rank in [0, 1] against {q} quantiles fitted on the fitting rows",
                [f"x = _num({D}, {a}).dropna()",
                 f"edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, {q + 1})[1:-1])) if len(x) else []",
                 f'state[{n}] = {{"edges": [float(e) for e in edges]}}'],
                [f"x = _num(out, {a})",
                 f'edges = np.asarray(state[{n}]["edges"], dtype="float64")',
                 'pos = np.searchsorted(edges, x.to_numpy(), side="right") / max(len(edges), 1)',
                 f'out[{n}] = pd.Series(pos, index=out.index, dtype="float64").where(x.notna())'])
    raise ValueError(f"unknown move kind {k!r}; known: {', '.join(KINDS)}")


LABEL_KINDS = ("target_enc", "te_oof", "expand")  # moves whose fit learns from the labels


def _check(move: Move) -> None:
    if move.kind not in KINDS:
        raise ValueError(f"unknown move kind {move.kind!r}; known: {', '.join(KINDS)}")
    arity = ARITY.get(move.kind, (1,))
    if not all(isinstance(c, str) for c in move.columns) or not (
            len(move.columns) >= 2 if move.kind == "expand" else len(move.columns) in arity):
        need = "at least 2" if move.kind == "expand" else " or ".join(str(a) for a in arity)
        raise ValueError(f"move {move.kind} needs {need} column name(s), got {move.columns!r}")
    p = move.params
    shapes = {"extract": lambda: p and p[0] in PATTERNS and len(p) == (1 if p[0] == "digits" else 2),
              "has_word": lambda: len(p) == 1, "rare": lambda: len(p) == 1, "te_oof": lambda: len(p) >= 1,
              "group_rank": lambda: len(p) == 1, "expand": lambda: len(p) == 2 and p[0] in SCREEN_OPS,
              "date_cyc": lambda: len(p) == 1 and p[0] in CYCLES}
    if move.kind in shapes and not shapes[move.kind]():
        raise ValueError(f"move {move.kind} has malformed parameters {p!r}")


def _literal(text: str) -> str:
    """A Python string literal, double-quoted like the rest of the generated code when possible."""
    return f'"{text}"' if text.isprintable() and '"' not in text and "\\" not in text else repr(text)


def _comment(text: str) -> str:
    """Text that is safe inside a one-line comment."""
    return re.sub(r"[\r\n\x00-\x1f]+", " ", text).strip()


def _kept(moves: list[Move]) -> list[Move]:
    """The moves in order, each feature name once, and only moves whose inputs exist when they run."""
    kept: list[Move] = []
    names: set[str] = set()
    written: set[str] = set()
    for move in moves:
        _check(move)
    derived_anywhere = {o for m in moves for o in m.outputs()}
    for move in moves:
        key = _key(move)
        needs = {c for c in move.columns if c in derived_anywhere}
        if key not in names and needs <= written:
            names.add(key)
            kept.append(move)
            written.update(move.outputs())
    return kept


def render_program(moves: list[Move], rationale: str = "", redundant_r: float | None = None,
                   max_levels: int | None = None) -> str:
    """A complete feature program applying ``moves`` in order (duplicate feature names dropped, and a move
    whose input column no earlier move writes).

    ``redundant_r`` is the correlation a drop move's comment names (the limit it was proposed under);
    ``max_levels`` the most tokens a text move keeps (both default to conf/tab.yaml's ``proposer.moves``).
    """
    if redundant_r is None or max_levels is None:
        limits = default_limits()
        redundant_r = limits.redundant_r if redundant_r is None else redundant_r
        max_levels = limits.max_levels if max_levels is None else max_levels
    kept = _kept(moves)
    manifest = manifest_line([[m.kind, list(m.columns), list(m.params)] for m in kept])
    features = [m for m in kept if m.kind != "drop"]
    drops = [m for m in kept if m.kind == "drop"]
    read = {c for m in features for c in m.columns}
    sources = {id(m) for m in features if set(m.outputs()) & read}  # moves a later move builds on
    D = "out" if sources else "X"
    fit: list[str] = ["out = X.copy()  # later moves read the columns earlier ones write"] if sources else []
    transform: list[str] = []
    for move in features:
        comment, fit_lines, transform_lines = _section(move, D)
        head = f"# --- {_comment(', '.join(move.outputs()))}: {_comment(comment)}"
        if id(move) in sources:
            fit_lines = fit_lines + transform_lines  # its columns, for the moves that build on them
        if fit_lines:
            fit += ["", head] + fit_lines
        transform += ["", head] + transform_lines
    if drops:
        transform.append("")
        for move in drops:
            transform.append(f"# --- drop {_comment(move.columns[0])}: nearly a copy of another column "
                             f"(|r| > {redundant_r}); removing it drops redundant input")
        transform.append(f"out = out.drop(columns=[{', '.join(_literal(m.columns[0]) for m in drops)}])")
    needs_target = any(m.kind in LABEL_KINDS for m in features)
    fit_body = (['target = pd.Series(np.asarray(y, dtype="float64"), index=X.index)'] if needs_target else []) \
        + ['state = {"columns": [str(c) for c in X.columns]}'] + fit + ["return state"]
    transform_body = ["out = X.copy()"] + transform + ["return out"]
    indent = lambda lines: "\n".join(" " * 8 + line if line else "" for line in lines)
    why = f"# Why: {_comment(rationale)}\n" if rationale.strip() else ""
    listing = "".join(f"#   - {_comment(m.describe())}\n" for m in kept) or "#   (none: identity)\n"
    helpers = _HELPERS.replace("{levels}", str(int(max_levels)))
    return f'''"""Feature program written by efe's offline proposer from its move library (efe.proposer.tab_moves)."""

{EVOLVE_START}
{manifest}
# Moves, in order:
{listing}{why}import math

import numpy as np
import pandas as pd

{helpers}

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

Tried = Callable[[list[Move]], bool]  # True when a program with this move list was evaluated (or is being)


def propose(parent_source: str, context: dict, feedback: dict, rng: np.random.Generator,
            max_moves: int | None = None, kinds: tuple[str, ...] | None = None,
            limits: MoveLimits | None = None, tried: Tried | None = None) -> tuple[str, str]:
    """One search step from the parent: add, remove or swap a move. Deterministic given ``rng``.

    ``kinds`` (a proposer role's slice of the library) limits what is added; the memory rules in
    ``feedback["rules"]`` (move descriptor -> helped / no effect / failed) reweight the candidates.
    ``feedback`` also holds the parent's ``valid``, ``importance`` (column -> importance on pool A)
    and ``delta_auc``; ``max_moves`` (default ``limits.max_moves``) caps the program's length.
    ``tried`` tells a move list already evaluated in this run: when the step drawn repeats one (or
    removes the last move: the identity is the baseline every program is scored against), the other
    steps from the parent are tried (in a weighted random order), then steps from its neighbours,
    before the repeat is returned.
    """
    limits = limits or default_limits()
    max_moves = limits.max_moves if max_moves is None else max_moves
    current = parse_moves(parent_source) or []
    n_cols = int(context.get("n_columns") or len(context.get("columns", {})) or 1)
    step = _Steps(context, feedback, limits, kinds, n_cols,
                  limit=max(1, min(max_moves, limits.column_factor * n_cols)))  # the gates allow 5x the input columns
    available = step.available(current)
    if not current and not available:
        raise NoMoveAvailable(f"no feature-engineering move applies to dataset {context.get('name')!r}")
    if tried is not None:
        known = tried
        tried = lambda moves: not moves or known(moves)  # noqa: E731 - no moves: the identity, the baseline itself
    moves, description = step.draw(current, available, rng, tried)
    if tried is not None and tried(_kept(moves)):
        for other, why in step.untried(current, rng, tried):
            return _result(limits, other, f"{why} (the first choice, {description}, was evaluated already)")
    return _result(limits, moves, description)


class _Steps:
    """The steps from one program: what may be added, and the add / remove / swap draws."""

    def __init__(self, context: dict, feedback: dict, limits: MoveLimits, kinds: tuple[str, ...] | None,
                 n_cols: int, limit: int) -> None:
        self.context, self.feedback, self.limits, self.kinds = context, feedback, limits, kinds
        self.importance = feedback.get("importance") or None
        self.limit = limit
        self.columns_cap = limits.column_factor * n_cols

    def available(self, current: list[Move], strict: bool = True) -> list[tuple[Move, float]]:
        """Moves that may be added to ``current``: the role's, or (``strict=False``) any, the role's first."""
        present = {_key(m) for m in current}
        width = sum(len(m.outputs()) for m in current)
        rules = self.feedback.get("rules")
        available = [(m, w * rule_weight(rules, move_key(m)))
                     for m, w in candidate_moves(self.context, self.importance, self.limits, current)
                     if _key(m) not in present and width + len(m.outputs()) <= self.columns_cap]
        if self.kinds is None:
            return available
        if not strict:
            return [(m, w if m.kind in self.kinds else 0.1 * w) for m, w in available]
        in_role = [(m, w) for m, w in available if m.kind in self.kinds]
        if in_role or not current:
            return in_role or available  # a role with nothing left to add may still remove or swap
        return []

    def draw(self, current: list[Move], available: list[tuple[Move, float]],
             rng: np.random.Generator, tried: Tried | None = None) -> tuple[list[Move], str]:
        parent_valid = self.feedback.get("valid")
        if parent_valid is not None and not parent_valid and current:
            action = "remove_last"
        elif not current:
            action = "add"
        elif not available:
            action = "remove"
        elif len(current) >= self.limit:
            action = "remove" if rng.random() < 0.5 else "swap"
        else:
            u = rng.random()
            action = "add" if u < 0.65 else ("remove" if u < 0.85 else "swap")
        if action == "remove_last":
            return current[:-1], f"remove {current[-1].describe()} (the parent was invalid)"
        if action == "add":
            best = self.best_untried(current, available, tried) if rng.random() < self.limits.best_first else None
            if best is not None:
                return current + [best], f"add {best.describe()} (the heaviest move not yet tried here)"
            new = pick(available, rng)
            return current + [new], f"add {new.describe()}"
        i = _pick_removal(current, self.feedback, rng)
        gone, moves = current[i], _without(current, i)
        choices = [(m, w) for m, w in self.available(moves) if m != gone] if action == "swap" else []
        if not choices:
            return moves, f"remove {gone.describe()}"
        new = pick(choices, rng)
        return moves + [new], f"swap {gone.describe()} for {new.describe()}"

    @staticmethod
    def best_untried(current: list[Move], available: list[tuple[Move, float]], tried: Tried | None) -> Move | None:
        """The heaviest move whose addition to ``current`` no evaluated program holds (None: all were tried).

        A weighted draw alone leaves a move the context measured as the strongest (a title 0.37 against a
        surname's 0.09) to chance: a role drawn twice can miss it, and a router that saw no improvement
        rarely returns to that role. Taking it first from each parent makes the strongest measured
        signals reach the pool early; the draw still explores the rest."""
        for move, _ in sorted(available, key=lambda mw: -mw[1]):
            if tried is None or not tried(_kept(current + [move])):
                return move
        return None

    def children(self, current: list[Move]) -> list[tuple[list[Move], str, float]]:
        """Every step from ``current`` with its probability weight (adds 0.65, removes 0.2, swaps 0.15)."""
        out: list[tuple[list[Move], str, float]] = []
        if len(current) < self.limit:
            adds = self.available(current, strict=False)
            total = sum(w for _, w in adds) or 1.0
            out += [(current + [m], f"add {m.describe()}", 0.65 * w / total) for m, w in adds]
        removal = _removal_weights(current, self.feedback)
        for i, gone in enumerate(current):
            moves = _without(current, i)
            out.append((moves, f"remove {gone.describe()}", 0.2 * removal[i]))
            swaps = [(m, w) for m, w in self.available(moves, strict=False) if m != gone]
            total = sum(w for _, w in swaps) or 1.0
            out += [(moves + [m], f"swap {gone.describe()} for {m.describe()}", 0.15 * removal[i] * w / total)
                    for m, w in swaps]
        return out

    def untried(self, current: list[Move], rng: np.random.Generator, tried: Tried):
        """Steps from ``current`` no evaluated program has taken, in a weighted random order; then steps
        from its neighbours (``limits.fallback_tries`` of them)."""
        seen = {_canonical(current)}
        children = self.children(current)
        for moves, why in _shuffled(children, rng):
            kept = _kept(moves)
            if _canonical(kept) not in seen and not tried(kept):
                yield moves, why
            seen.add(_canonical(kept))
        steps = [(m, why) for m, why, _ in children]
        weights = [w for _, _, w in children]
        for _ in range(self.limits.fallback_tries if steps else 0):
            middle, first = steps[int(rng.choice(len(steps), p=_normalised(weights)))]
            for moves, why in _shuffled(self.children(middle), rng):
                kept = _kept(moves)
                if _canonical(kept) not in seen and not tried(kept):
                    yield moves, f"{first}, then {why}"
                    return
                seen.add(_canonical(kept))


def _shuffled(items: list[tuple[list[Move], str, float]], rng: np.random.Generator):
    """The (moves, description) items in a random order where heavier items tend to come first."""
    if not items:
        return []
    w = np.maximum(np.asarray([x for _, _, x in items], dtype="float64"), 1e-12)
    keys = np.log(rng.random(len(items))) / w  # Efraimidis-Spirakis: sort by u ** (1 / w)
    return [(items[i][0], items[i][1]) for i in np.argsort(-keys, kind="stable")]


def _normalised(weights: list[float]) -> np.ndarray:
    w = np.maximum(np.asarray(weights, dtype="float64"), 1e-12)
    return w / w.sum()


def _canonical(moves: list[Move]) -> str:
    """A move list regardless of its order (the same features, whatever order they were added in)."""
    return canonical_entries(_entries(moves))


def _entries(moves: list[Move]) -> list[list]:
    return [[m.kind, list(m.columns), list(m.params)] for m in moves]


def canonical_entries(entries: list) -> str:
    """The manifest entries of a program as one order-free key."""
    return json.dumps(sorted(json.dumps(e) for e in entries))


def manifest_of(moves: list[Move]) -> str:
    """The manifest text a program of these moves carries (after the marker)."""
    return json.dumps(_entries(_kept(moves)))


def _without(moves: list[Move], i: int) -> list[Move]:
    """The moves without the i-th one and without the moves built on its columns."""
    gone = set(moves[i].outputs())
    out = []
    for j, move in enumerate(moves):
        if j == i:
            continue
        if set(move.columns) & gone:
            gone.update(move.outputs())
            continue
        out.append(move)
    return out


def _result(limits: MoveLimits, moves: list[Move], description: str) -> tuple[str, str]:
    return render_program(moves, description, limits.redundant_r, limits.max_levels), description


def move_key(move: Move) -> str:
    """A move as the memory rules name it: ``kind(column, ...)``."""
    return f"{move.kind}({', '.join(move.columns)})"


def _removal_weights(moves: list[Move], feedback: dict) -> list[float]:
    """How likely each move is to be removed: engineered columns with ~0 or negative importance first."""
    importance: dict[str, Any] = feedback.get("importance") or {}
    weights = []
    for move in moves:
        values = [float(importance[o]) for o in move.outputs() if importance.get(o) is not None
                  and math.isfinite(float(importance[o]))]
        if not values:
            weights.append(1.0)
        else:
            value = max(values)
            weights.append(3.0 if value <= 5e-4 else 1.0 / (1.0 + 100.0 * value))
    delta = feedback.get("delta_auc")
    if weights and delta is not None and float(delta) < 0:
        weights[-1] *= 2.0  # the newest move is the likeliest cause of a loss
    total = sum(weights) or 1.0
    return [w / total for w in weights]


def _pick_removal(moves: list[Move], feedback: dict, rng: np.random.Generator) -> int:
    """Index of the move to remove: engineered columns with ~0 or negative importance first."""
    w = np.asarray(_removal_weights(moves, feedback))
    return int(rng.choice(len(moves), p=w / w.sum()))
