"""The outer split: a held-out test part that the search never sees."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split

from efe.datasets.tabular import DatasetError, TabularDataset, load_heldout


def train_and_heldout(ds: TabularDataset, test_path: Any, test_fraction: float, seed: int,
                      train_path: Any = None) -> tuple[TabularDataset, TabularDataset, str]:
    """(training part, held-out part, where the held-out part came from, in words for the report).

    With ``test_path`` the user's own file is the held-out part and the whole training file is
    used for the search and the refit; otherwise a stratified ``test_fraction`` is split off.
    """
    if test_path:
        if train_path and Path(str(test_path)).expanduser().resolve() == Path(str(train_path)).expanduser().resolve():
            raise DatasetError(f"dataset.test_path '{test_path}' is the training file itself; give a separate "
                               "test file, or leave test_path out to split one off (split.test_fraction)")
        return (ds, load_heldout(str(test_path), ds),
                f"the test file '{test_path}' (dataset.test_path); the whole training file was used for the "
                "search and the refit")
    train, test = outer_split(ds, test_fraction, seed)
    kind = "a random" if ds.task == "regression" else "a stratified"
    return (train, test, f"{kind} {test_fraction:.0%} split of the data (split.test_fraction="
                         f"{test_fraction}, seed {seed}); the search and the refit used the other "
                         f"{1 - test_fraction:.0%}")


def outer_split(ds: TabularDataset, test_fraction: float, seed: int) -> tuple[TabularDataset, TabularDataset]:
    """Seeded, stratified by class (a regression target: a plain random split); both parts keep the metadata."""
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"split.test_fraction must be between 0 and 1, got {test_fraction}")
    stratify = None if ds.task == "regression" else ds.y
    if stratify is not None:
        counts = ds.y.value_counts()
        if counts.min() < 2:
            raise DatasetError(f"the minority class of '{ds.target}' has {counts.min()} row(s); "
                               "at least 2 are needed to split off a held-out part")
    train_idx, test_idx = train_test_split(
        ds.X.index.to_numpy(), test_size=test_fraction, stratify=stratify, random_state=seed
    )
    return _subset(ds, sorted(train_idx)), _subset(ds, sorted(test_idx))


def _subset(ds: TabularDataset, idx: list) -> TabularDataset:
    return TabularDataset(
        name=ds.name, X=ds.X.loc[idx].reset_index(drop=True), y=ds.y.loc[idx].reset_index(drop=True),
        target=ds.target, description=ds.description, positive_label=ds.positive_label,
        negative_label=ds.negative_label, warnings=list(ds.warnings), source_columns=list(ds.source_columns),
        task=ds.task, classes=list(ds.classes), task_note=ds.task_note,
    )


def write_table(ds: TabularDataset, path) -> None:
    """Parquet with the target as the last column."""
    frame = ds.X.copy()
    frame[ds.target] = ds.y.to_numpy()
    frame.to_parquet(path, index=False)


def read_train(path, target: str) -> tuple[pd.DataFrame, pd.Series]:
    """(features, target): class codes as int64, a regression target (stored as floats) as float64."""
    frame = pd.read_parquet(path)
    y = frame[target]
    return frame.drop(columns=[target]), y.astype("float64" if y.dtype.kind == "f" else "int64")
