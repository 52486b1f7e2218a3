"""The dataset context the LLM sees: schema, statistics, description, a few sample rows.

Computed from the training part only (never the held-out part), as plain JSON so it can be
written to ``context.json``, embedded in prompts and read by the offline proposer.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from efe.core.text_patterns import PATTERNS, TITLE_RE
from efe.datasets.tabular import TabularDataset


def _num(value: Any, digits: int = 4) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(v):
        return None
    return float(f"{v:.{digits}g}")


def column_kind(series: pd.Series) -> str:
    if pd.api.types.is_bool_dtype(series):
        return "boolean"
    if pd.api.types.is_numeric_dtype(series) and not isinstance(series.dtype, pd.CategoricalDtype):
        return "numeric"
    if pd.api.types.is_datetime64_any_dtype(series):
        return "datetime"
    return "categorical"


def build_context(ds: TabularDataset, *, sample_rows: int = 5, top_values: int = 5,
                  top_correlations: int = 10, min_group_rows: int = 20, pair_columns: int = 6,
                  top_pairs: int = 10, signal_rows: int = 20000, seed: int = 0) -> dict[str, Any]:
    X, y = ds.X, ds.y
    task = ds.task
    # what parsed text and pairs of columns say about the target: measured on at most signal_rows rows
    sub = X.sample(signal_rows, random_state=seed).index if len(X) > signal_rows else X.index
    y_signal = y.loc[sub].astype("float64") if task != "multiclass" else None
    columns: dict[str, dict] = {}
    numeric_cols = []
    for col in X.columns:
        s = X[col]
        kind = column_kind(s)
        info: dict[str, Any] = {
            "dtype": str(s.dtype), "kind": kind,
            "missing_rate": _num(s.isna().mean(), 3), "n_unique": int(s.nunique(dropna=True)),
        }
        if kind == "numeric":
            numeric_cols.append(col)
            d = s.astype("float64")
            q = d.quantile([0.0, 0.25, 0.5, 0.75, 1.0])
            info.update({
                "min": _num(q.iloc[0]), "q25": _num(q.iloc[1]), "median": _num(q.iloc[2]),
                "q75": _num(q.iloc[3]), "max": _num(q.iloc[4]), "mean": _num(d.mean()),
                "std": _num(d.std()), "skew": _num(d.skew(), 3),
                "integer_valued": bool(np.all(np.mod(d.dropna(), 1) == 0)) if d.notna().any() else False,
                # class codes of several classes have no order: no correlation with them
                "target_corr": (_num(d.corr(y.astype("float64")), 3)
                                if d.std() > 0 and task != "multiclass" else None),
                # ... and of its squared distance from the median: a U-shaped effect shows here, not above
                "target_corr_sq": (_num(((d - d.median()) ** 2).corr(y.astype("float64")), 3)
                                   if d.std() > 0 and task != "multiclass" else None),
            })
        else:
            text = s.astype(str).where(s.notna())
            counts = text.value_counts()
            if info["n_unique"] > 0.5 * len(s):
                # near-unique text (names, ids): examples only; per-value label rates would
                # reveal individual rows' labels
                info["mostly_unique"] = True
                info["examples"] = [str(v) for v in counts.index[:3]]
            else:
                info["top_values"] = {str(k): _num(v / len(s), 3) for k, v in counts.head(top_values).items()}
                supported = [k for k in counts.head(top_values).index if counts[k] >= min_group_rows]
                if task == "binary":
                    rates = y.groupby(text).mean()
                    info["positive_rate_by_top_value"] = {str(k): _num(rates.get(k), 3) for k in supported}
                elif task == "regression":
                    means = y.groupby(text).mean()
                    info["target_mean_by_top_value"] = {str(k): _num(means.get(k), 4) for k in supported}
                else:
                    commonest = y.groupby(text).agg(lambda v: v.value_counts().idxmax())
                    info["commonest_class_by_top_value"] = {str(k): _class(ds, commonest.get(k)) for k in supported}
            if info["n_unique"] > 20 and y_signal is not None:  # text the proposer's token moves may parse
                signal = token_signal(text.loc[sub], y_signal, min_group_rows)
                if signal:
                    info["token_signal"] = signal
        columns[str(col)] = info
    pairs = []
    if len(numeric_cols) > 1:
        corr = X[numeric_cols].astype("float64").corr()
        for i, a in enumerate(numeric_cols):
            for b in numeric_cols[i + 1:]:
                r = corr.loc[a, b]
                if np.isfinite(r):
                    pairs.append((str(a), str(b), _num(r, 3)))
        pairs.sort(key=lambda p: -abs(p[2]))
    pair_signals = []
    if y_signal is not None and len(numeric_cols) > 1:
        strongest = sorted((c for c in numeric_cols if columns[str(c)].get("target_corr") is not None),
                           key=lambda c: -abs(columns[str(c)]["target_corr"]))[:pair_columns]
        pair_signals = pair_signal(X.loc[sub, strongest], y_signal)[:top_pairs]
    sample = X.sample(min(sample_rows, len(X)), random_state=seed)
    rows = [{str(k): _cell(v) for k, v in row.items()} for _, row in sample.iterrows()]
    return {
        "name": ds.name,
        "description": ds.description,
        "target": ds.target,
        "problem_type": PROBLEM_TYPE[task],
        "task": task,
        "positive_label": ds.positive_label,
        "n_rows": int(len(X)),
        "n_columns": int(X.shape[1]),
        **_target_summary(ds),
        "columns": columns,
        "top_correlations": [list(p) for p in pairs[:top_correlations]],
        "pair_signals": pair_signals,
        "sample_rows": rows,
    }


def _adjusted_eta(groups: pd.Series, y: pd.Series) -> float:
    """The correlation ratio of ``y`` across ``groups``, corrected for the number of groups (epsilon
    squared, square-rooted): about 0 when the groups say nothing, on the scale of a correlation."""
    n, k = len(y), int(groups.nunique())
    if k < 2 or n <= k:
        return 0.0
    total = float(((y - y.mean()) ** 2).sum())
    if total <= 0:
        return 0.0
    means = y.groupby(groups).mean()
    between = float((((means - y.mean()) ** 2) * groups.value_counts().reindex(means.index)).sum())
    within = (total - between) / (n - k)
    return math.sqrt(max(0.0, (between - (k - 1) * within) / total))


def token_signal(text: pd.Series, y: pd.Series, min_rows: int) -> dict[str, float]:
    """For each token pattern the text matches (at least half the values): how much the tokens it
    extracts say about the target. A token seen on fewer than ``min_rows`` rows joins "other", so
    near-unique text reveals no row's label. What lets a proposer try a title before a surname."""
    present = text.dropna()
    if present.empty:
        return {}
    out: dict[str, float] = {}
    for name, pattern in [("token", TITLE_RE), *PATTERNS.items()]:
        tokens = present.str.extract(pattern, expand=False).str.strip()
        if tokens.notna().mean() < 0.5:
            continue
        counts = tokens.value_counts()
        kept = tokens.where(tokens.isin(counts.index[counts >= min_rows]), "<other>").fillna("<none>")
        full = kept.reindex(text.index).fillna("<missing>")
        out[name] = _num(_adjusted_eta(full, y), 3) or 0.0
    return out


def pair_signal(X: pd.DataFrame, y: pd.Series) -> list[list]:
    """[a, op, b, r] for the ratio a/b (both ways), product and difference of each pair of columns,
    strongest first: r is the partial rank correlation of the combination with the target given both
    columns, i.e. what the pair carries that neither column's own trend does (about 0 for a pair
    whose columns act additively). Ranks, so heavy-tailed ratios count by order, not size."""
    ranks = X.astype("float64").rank()
    y_rank = y.rank().to_numpy()
    cols = list(X.columns)
    out = []
    for i, a in enumerate(cols):
        for b in cols[i + 1:]:
            A, B = X[a].astype("float64"), X[b].astype("float64")
            combos = {("ratio", a, b): A / B.where(B != 0), ("ratio", b, a): B / A.where(A != 0),
                      ("product", a, b): A * B, ("diff", a, b): A - B}
            base = ranks[[a, b]].to_numpy()
            for (op, first, second), values in combos.items():
                r = _partial_rank_corr(values.replace([np.inf, -np.inf], np.nan), base, y_rank)
                if r is not None:
                    out.append([str(first), op, str(second), r])
    out.sort(key=lambda e: -e[3])
    return out


def _partial_rank_corr(values: pd.Series, base: np.ndarray, y_rank: np.ndarray) -> float | None:
    ok = values.notna().to_numpy() & np.isfinite(base).all(axis=1) & np.isfinite(y_rank)
    if ok.sum() < 30:
        return None
    design = np.column_stack([np.ones(int(ok.sum())), base[ok]])
    f = values[ok].rank().to_numpy()

    def residual(v: np.ndarray) -> np.ndarray:
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    rf, ry = residual(f), residual(y_rank[ok])
    if rf.std() == 0 or ry.std() == 0:
        return None
    return _num(abs(float(np.corrcoef(rf, ry)[0, 1])), 3)


PROBLEM_TYPE = {"binary": "binary classification", "multiclass": "multiclass classification",
                "regression": "regression"}


def _class(ds: TabularDataset, code: Any) -> Any:
    return ds.classes[int(code)] if code is not None and ds.classes else code


def _target_summary(ds: TabularDataset) -> dict[str, Any]:
    """What the target looks like: the positive rate, the class shares, or its distribution."""
    y = ds.y
    if ds.task == "binary":
        return {"positive_rate": _num(y.mean(), 3)}
    if ds.task == "multiclass":
        shares = y.value_counts(normalize=True).sort_index()
        return {"classes": list(ds.classes), "class_shares": {str(_class(ds, k)): _num(v, 3) for k, v in shares.items()}}
    q = y.quantile([0.0, 0.25, 0.5, 0.75, 1.0])
    return {"target_stats": {"min": _num(q.iloc[0]), "q25": _num(q.iloc[1]), "median": _num(q.iloc[2]),
                             "q75": _num(q.iloc[3]), "max": _num(q.iloc[4]), "mean": _num(y.mean()),
                             "std": _num(y.std()), "skew": _num(y.skew(), 3)}}


def _target_line(ctx: dict[str, Any]) -> str:
    task = ctx.get("task", "binary")
    if task == "regression":
        return (f"Task: regression; target '{ctx['target']}' (numeric: {ctx.get('target_stats')}); the downstream "
                "model is judged by RMSE (lower is better)")
    if task == "multiclass":
        return (f"Task: multiclass classification; target '{ctx['target']}' (class shares {ctx.get('class_shares')}); "
                "the downstream model is judged by macro one-vs-rest ROC-AUC")
    return (f"Task: {ctx['problem_type']}; target '{ctx['target']}' (positive class {ctx['positive_label']!r}, "
            f"positive rate {ctx['positive_rate']})")


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    return value if isinstance(value, (int, float, str, bool)) else str(value)


def render_context(ctx: dict[str, Any]) -> str:
    """The context as prompt text: compact, one line per column."""
    lines = [
        f"Dataset: {ctx['name']} ({ctx['n_rows']} training rows, {ctx['n_columns']} feature columns)",
        _target_line(ctx),
    ]
    if ctx.get("description"):
        lines.append(f"Description: {ctx['description']}")
    lines.append("Columns:")
    for name, info in ctx["columns"].items():
        if info["kind"] == "numeric":
            stats = (f"range [{info['min']}, {info['max']}], quartiles {info['q25']}/{info['median']}/"
                     f"{info['q75']}, skew {info['skew']}, corr with target {info['target_corr']}")
        elif info.get("mostly_unique"):
            stats = f"mostly unique text, e.g. {info['examples']}"
        else:
            by = next(((k, info[k]) for k in ("positive_rate_by_top_value", "target_mean_by_top_value",
                                              "commonest_class_by_top_value") if k in info), None)
            stats = f"top values {info.get('top_values')}" + (f", {by[0][:-len('_by_top_value')].replace('_', ' ')} "
                                                               f"by value {by[1]}" if by else "")
        if info.get("token_signal"):
            stats += ", tokens parsed from it relate to the target (0 = not at all): " + ", ".join(
                f"{k} {v}" for k, v in info["token_signal"].items())
        lines.append(f"- {name} ({info['kind']}, {info['dtype']}, {info['n_unique']} distinct, "
                     f"{info['missing_rate']:.1%} missing): {stats}")
    if ctx["top_correlations"]:
        lines.append("Strongest correlations between numeric columns: "
                     + "; ".join(f"{a}~{b} {r}" for a, b, r in ctx["top_correlations"]))
    if ctx.get("pair_signals"):
        symbol = {"ratio": "/", "product": "*", "diff": "-"}
        lines.append("Pairs that relate to the target beyond their columns' own trends (partial rank correlation): "
                     + "; ".join(f"{a}{symbol.get(op, op)}{b} {r}" for a, op, b, r in ctx["pair_signals"][:5]))
    lines.append("Sample rows (training part):")
    for row in ctx["sample_rows"]:
        lines.append(f"  {row}")
    return "\n".join(lines)
