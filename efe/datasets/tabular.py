"""Tabular datasets: read a file or a bundled table, and refuse bad input in the user's words.

Everything downstream (splits, the evaluator, freezing) gets a ``TabularDataset`` whose target is
coded for its task (``efe.core.task``): 0/1 for binary, class codes 0..K-1 for multiclass, floats for
regression; and whose features have no all-NaN or constant columns. ``dataset.task=auto`` infers the task
from the target and says so (``task_note``).
"""

from __future__ import annotations

import csv
import difflib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from efe.core.config import conf_section
from efe.core.task import CHOICES
from efe.datasets import bundled
from efe.datasets.errors import DatasetError
from efe.frozen.freeze import input_schema
from efe.frozen.transformer import coerce_to_schema

log = logging.getLogger(__name__)


@dataclass
class TabularDataset:
    name: str
    X: pd.DataFrame
    y: pd.Series  # binary: 0/1 ints, 1 = positive_label; multiclass: codes into classes; regression: floats
    target: str
    description: str = ""
    positive_label: Any = 1
    negative_label: Any = 0
    warnings: list[str] = field(default_factory=list)
    source_columns: list[str] = field(default_factory=list)  # the file's columns, before any was dropped
    task: str = "binary"
    classes: list = field(default_factory=list)  # classification: the target's values, in code order
    task_note: str = ""  # how the task was chosen (inferred, or given), for the console and the report

    @property
    def frame(self) -> pd.DataFrame:
        return self.X.assign(**{self.target: self.y.values})


def read_table(path: str | Path) -> pd.DataFrame:
    """CSV or Parquet, with clear errors for missing, empty and duplicate-header files."""
    p = Path(path).expanduser()
    if not p.exists():
        raise DatasetError(f"dataset file '{path}' does not exist (looked at {p.resolve()})")
    if p.is_dir():
        raise DatasetError(f"dataset path '{path}' is a directory, expected a .csv or .parquet file")
    suffix = p.suffix.lower()
    if suffix in (".parquet", ".pq"):
        try:
            names = pq.read_schema(p).names
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types
            raise DatasetError(f"cannot read '{path}' as Parquet: {exc}") from None
        _check_duplicates(names, path)
        frame = pd.read_parquet(p)
    elif suffix in (".csv", ".tsv", ".txt", ".gz"):
        sep = "\t" if suffix == ".tsv" else ","
        if p.stat().st_size == 0:
            raise DatasetError(f"dataset file '{path}' is empty")
        with open(p, newline="", encoding="utf-8", errors="replace") as fh:
            header = next(csv.reader(fh, delimiter=sep), [])
        _check_duplicates([h.strip() for h in header], path)
        try:
            frame = pd.read_csv(p, sep=sep)
        except pd.errors.EmptyDataError:
            raise DatasetError(f"dataset file '{path}' is empty") from None
        except (pd.errors.ParserError, UnicodeDecodeError) as exc:
            raise DatasetError(f"cannot parse '{path}' as CSV: {exc}") from None
    else:
        raise DatasetError(f"unsupported file type '{p.suffix}' for '{path}'; use .csv or .parquet")
    if frame.shape[0] == 0 or frame.shape[1] == 0:
        raise DatasetError(f"dataset file '{path}' has no data rows ({frame.shape[0]} rows, "
                           f"{frame.shape[1]} columns)")
    return frame


def prepare(
    frame: pd.DataFrame,
    target: str,
    *,
    name: str,
    description: str = "",
    positive_label: Any = None,
    source: str = "the table",
    task: str = "auto",
    min_class_rows: int | None = None,
    max_auto_classes: int | None = None,
) -> TabularDataset:
    """Validate a raw frame into a dataset for its task (``task``: auto, binary, multiclass or regression).

    ``min_class_rows``: the fewest rows a class may have (None: not checked; ``load_tabular`` checks
    ``checks.min_class_rows``); ``max_auto_classes``: an integer target with at most this many values is
    read as classes by ``task=auto`` (more: regression), by default ``checks.max_auto_classes`` in conf/tab.yaml.
    """
    if max_auto_classes is None:
        max_auto_classes = conf_section("tab", "checks")["max_auto_classes"]
    task = str(task or "auto")
    if task not in CHOICES:
        raise DatasetError(f"dataset.task={task!r} is not one of {', '.join(CHOICES)}")
    if frame.shape[0] == 0:
        raise DatasetError(f"{source} is empty")
    _check_duplicates([str(c) for c in frame.columns], source)
    frame = frame.rename(columns=lambda c: str(c).strip())
    if not target:
        raise DatasetError(f"no target column given for {source}; set dataset.target")
    if target not in frame.columns:
        close = difflib.get_close_matches(target, list(frame.columns), n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        shown = ", ".join(map(str, frame.columns[:30])) + (" …" if frame.shape[1] > 30 else "")
        raise DatasetError(f"target column '{target}' is missing from {source} (found: {shown}){hint}")
    warnings: list[str] = []
    labels = frame[target]
    missing = int(labels.isna().sum())
    if missing == len(frame):
        raise DatasetError(f"target column '{target}' in {source} is empty (all values missing)")
    numeric = pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)
    if task == "regression" or (task == "auto" and numeric and _looks_continuous(labels, max_auto_classes)):
        # a regression target: every row's value is the answer; none is guessed or dropped
        return _finish(frame, target, _regression_target(labels, target, source, task), warnings, name=name,
                       description=description, source=source, task="regression", classes=[],
                       positive_label=None, negative_label=None,
                       note=_note(task, "regression", target, labels, numeric))
    if missing:
        warnings.append(f"dropped {missing} rows whose target '{target}' is missing")
        frame = frame[labels.notna()]
        labels = frame[target]
    classes = sorted(pd.unique(labels), key=lambda v: (str(type(v)), v))
    if len(classes) == 1:
        raise DatasetError(f"target '{target}' in {source} is constant ({_shown(classes[0])} in all "
                           f"{len(frame)} rows): there is nothing to predict")
    kind = task if task != "auto" else ("binary" if len(classes) == 2 else "multiclass")
    if kind == "binary" and len(classes) > 2:
        shown = ", ".join(_shown(c) for c in classes[:8]) + (" …" if len(classes) > 8 else "")
        other = "regression" if numeric else "multiclass"
        raise DatasetError(f"target '{target}' in {source} has {len(classes)} distinct values ({shown}) but "
                           f"dataset.task=binary needs two; set dataset.task={other} (or auto)")
    if kind == "multiclass" and len(classes) == 2:
        raise DatasetError(f"target '{target}' in {source} has two values ({_shown(classes[0])}, "
                           f"{_shown(classes[1])}); set dataset.task=binary (or auto) for a two-class target")
    counts = labels.value_counts()
    if min_class_rows is not None and int(counts.min()) < int(min_class_rows):
        rare = counts.idxmin()
        raise DatasetError(f"class {_shown(rare)} of target '{target}' in {source} has only {int(counts.min())} "
                           f"row(s), fewer than checks.min_class_rows={min_class_rows}: its gains cannot be "
                           "measured; merge or drop that class")
    note = _note(task, kind, target, labels, numeric)
    if kind == "multiclass":
        if positive_label is not None:
            raise DatasetError(f"dataset.positive_label is only for a binary target; target '{target}' is "
                               f"multiclass ({len(classes)} classes)")
        codes = {c: i for i, c in enumerate(classes)}
        y = labels.map(codes).astype("int64").rename(target)
        return _finish(frame, target, y, warnings, name=name, description=description, source=source,
                       task="multiclass", classes=[_plain(c) for c in classes], positive_label=None,
                       negative_label=None, note=note)
    if positive_label is None:
        positive_label = classes[1]
    elif positive_label not in classes:
        raise DatasetError(f"positive_label {_shown(positive_label)} is not a value of target '{target}' "
                           f"(values: {_shown(classes[0])}, {_shown(classes[1])})")
    negative_label = classes[0] if classes[1] == positive_label else classes[1]
    y = (labels == positive_label).astype("int64").rename(target)
    return _finish(frame, target, y, warnings, name=name, description=description, source=source, task="binary",
                   classes=[_plain(negative_label), _plain(positive_label)], positive_label=positive_label,
                   negative_label=negative_label, note=note)


def _looks_continuous(labels: pd.Series, max_auto_classes: int) -> bool:
    """A numeric target read as a quantity: non-integer values, or more integer values than a class list has."""
    values = labels.dropna().astype("float64")
    distinct = values.nunique()
    if distinct <= 2:
        return False
    integer = bool(np.all(np.isfinite(values)) and np.all(np.mod(values, 1) == 0))
    return not integer or distinct > int(max_auto_classes)


def _regression_target(labels: pd.Series, target: str, source: str, task: str) -> pd.Series:
    if not (pd.api.types.is_numeric_dtype(labels) and not pd.api.types.is_bool_dtype(labels)):
        shown = ", ".join(_shown(v) for v in pd.unique(labels.dropna())[:5])
        raise DatasetError(f"target '{target}' in {source} is not numeric (values such as {shown}); "
                           "dataset.task=regression needs numbers (use binary or multiclass for classes)")
    y = labels.astype("float64")
    n_missing = int(y.isna().sum())
    if n_missing:
        raise DatasetError(f"target '{target}' in {source} has {n_missing} missing (NaN) value(s); a regression "
                           "target must be known on every row: remove those rows first")
    n_inf = int(np.isinf(y.to_numpy()).sum())
    if n_inf:
        raise DatasetError(f"target '{target}' in {source} has {n_inf} infinite value(s); a regression target "
                           "must be finite: remove or fix those rows first")
    if y.nunique() == 1:
        raise DatasetError(f"target '{target}' in {source} is constant ({_shown(y.iloc[0])} in all {len(y)} "
                           "rows): there is nothing to predict")
    return y.rename(target)


def _note(asked: str, kind: str, target: str, labels: pd.Series, numeric: bool) -> str:
    """The console's and the report's line on the task."""
    distinct = int(labels.nunique())
    what = f"{'numeric' if numeric else 'non-numeric'}, {distinct} distinct values"
    if asked != "auto":
        return f"task: {kind} (dataset.task={asked}; target '{target}': {what})"
    others = "|".join(t for t in ("binary", "multiclass", "regression") if t != kind)
    return (f"task: {kind}, inferred from target '{target}' ({what}); "
            f"set dataset.task={others} to override")


def _finish(frame: pd.DataFrame, target: str, y: pd.Series, warnings: list[str], *, name: str, description: str,
            source: str, task: str, classes: list, positive_label: Any, negative_label: Any,
            note: str) -> TabularDataset:
    """The features' checks (all-missing, constant, mixed types) and the dataset."""
    source_columns = [str(c) for c in frame.columns]
    X = frame.drop(columns=[target])
    for col in list(X.columns):
        series = X[col]
        if series.isna().all():
            X = X.drop(columns=[col])
            warnings.append(f"dropped column '{col}': all values are missing")
            continue
        if series.dtype == object:
            kinds = {type(v).__name__ for v in series.dropna()}
            if not kinds <= {"str"}:
                if kinds <= {"str", "int", "float", "bool"}:
                    X[col] = series = series.map(lambda v: v if pd.isna(v) else str(v))
                    warnings.append(f"column '{col}' mixes types {sorted(kinds)}; read as text")
                else:
                    raise DatasetError(f"column '{col}' in {source} holds values of type "
                                       f"{sorted(kinds)}; only numbers, text and booleans are supported")
        if series.nunique(dropna=False) == 1:
            X = X.drop(columns=[col])
            warnings.append(f"dropped column '{col}': it is constant ({_shown(series.iloc[0])})")
    if X.shape[1] == 0:
        raise DatasetError(f"{source} has no usable feature columns besides the target '{target}'")
    X = X.reset_index(drop=True)
    y = y.reset_index(drop=True)
    for w in warnings:
        log.warning("%s: %s", name, w)
    return TabularDataset(name=name, X=X, y=y, target=target, description=description,
                          positive_label=_plain(positive_label), negative_label=_plain(negative_label),
                          warnings=warnings, source_columns=source_columns, task=task, classes=classes,
                          task_note=note)


def load_heldout(path: str | Path, train: TabularDataset) -> TabularDataset:
    """The user's own test file as the held-out part, checked against the training file.

    It must have the training file's columns and target values; its columns are given the
    training part's types (as a frozen program checks its input) so the held-out score sees them.
    """
    source = f"the test file '{path}'"
    frame = read_table(path).rename(columns=lambda c: str(c).strip())
    expected = train.source_columns or [*map(str, train.X.columns), train.target]
    missing = [c for c in expected if c not in frame.columns]
    extra = [str(c) for c in frame.columns if c not in expected]
    if missing or extra:
        parts = ([f"missing {', '.join(map(repr, missing))}"] if missing else []) + \
                ([f"not in the training file: {', '.join(map(repr, extra))}"] if extra else [])
        raise DatasetError(f"{source} must have the same columns as the training file ({'; '.join(parts)})")
    labels = frame[train.target]
    warnings = []
    if train.task == "regression":
        y = _regression_target(labels, train.target, source, "regression").reset_index(drop=True)
    else:
        if labels.isna().any():
            warnings.append(f"dropped {int(labels.isna().sum())} rows of {source} whose target is missing")
            frame = frame[labels.notna()]
            labels = frame[train.target]
        known = list(train.classes) or [train.negative_label, train.positive_label]
        unknown = [v for v in pd.unique(labels) if _plain(v) not in known]
        if unknown:
            raise DatasetError(f"target '{train.target}' in {source} has values the training file does not have: "
                               f"{', '.join(_shown(v) for v in unknown[:5])} (training values: "
                               f"{', '.join(_shown(v) for v in known[:8])})")
        if train.task == "multiclass":
            y = labels.map(lambda v: known.index(_plain(v))).astype("int64")
        else:
            y = (labels == train.positive_label).astype("int64")
        y = y.rename(train.target).reset_index(drop=True)
        if y.nunique() < 2:
            raise DatasetError(f"{source} holds only one class of '{train.target}' ({_shown(labels.iloc[0])} in "
                               f"{len(y)} rows); a held-out ROC-AUC needs at least two")
    try:  # the frozen program's own input check: same columns, numeric stays numeric
        X = coerce_to_schema(frame, input_schema(train.X), where=source)
    except ValueError as exc:
        raise DatasetError(str(exc)) from None
    for w in warnings:
        log.warning("%s: %s", train.name, w)
    return TabularDataset(name=train.name, X=X.reset_index(drop=True), y=y, target=train.target,
                          description=train.description, positive_label=train.positive_label,
                          negative_label=train.negative_label, warnings=warnings,
                          source_columns=[str(c) for c in frame.columns], task=train.task,
                          classes=list(train.classes), task_note=train.task_note)


def load_tabular(cfg: Mapping[str, Any], min_class_rows: int | None = None,
                 max_auto_classes: int | None = None) -> TabularDataset:
    """From a ``dataset`` config group: a bundled table or a file with a target column.

    ``dataset.task`` (auto when absent) chooses binary, multiclass or regression; the two limits default
    to ``checks`` in conf/tab.yaml.
    """
    name = str(cfg.get("name") or "")
    path = cfg.get("path")
    if min_class_rows is None:
        min_class_rows = conf_section("tab", "checks")["min_class_rows"]
    limits = {"min_class_rows": min_class_rows, "max_auto_classes": max_auto_classes}
    if path:
        frame = read_table(path)
        return prepare(frame, str(cfg.get("target") or ""), name=name or Path(path).stem,
                       description=str(cfg.get("description") or ""),
                       positive_label=cfg.get("positive_label"), source=f"'{path}'",
                       task=str(cfg.get("task") or "auto"), **limits)
    if name in bundled.TABLES:
        table = bundled.TABLES[name]
        return prepare(table.load(), table.target, name=name, description=table.description,
                       positive_label=table.positive_label, source=f"bundled dataset '{name}'",
                       task=str(cfg.get("task") or table.task), **limits)
    raise DatasetError(f"unknown dataset '{name}'; bundled: {', '.join(sorted(bundled.TABLES))}; "
                       "or use dataset=csv dataset.path=... dataset.target=...")


def _check_duplicates(names: list, source: Any) -> None:
    seen, dups = set(), []
    for n in names:
        if n in seen and n not in dups:
            dups.append(n)
        seen.add(n)
    if dups:
        raise DatasetError(f"{source} has duplicate column names: {', '.join(map(repr, dups))}")


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def _shown(value: Any) -> str:
    """A value as a user reads it: 0, 'yes', 2.5 (never np.int64(0))."""
    return repr(_plain(value))
