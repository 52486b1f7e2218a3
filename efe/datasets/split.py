"""The outer split: a held-out test part that the search never sees."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from efe.datasets.tabular import DatasetError, TabularDataset


def outer_split(ds: TabularDataset, test_fraction: float, seed: int) -> tuple[TabularDataset, TabularDataset]:
    """Stratified, seeded; both parts keep the dataset's metadata."""
    if not 0.0 < test_fraction < 1.0:
        raise DatasetError(f"split.test_fraction must be between 0 and 1, got {test_fraction}")
    counts = ds.y.value_counts()
    if counts.min() < 2:
        raise DatasetError(f"the minority class of '{ds.target}' has {counts.min()} row(s); "
                           "at least 2 are needed to split off a held-out part")
    train_idx, test_idx = train_test_split(
        ds.X.index.to_numpy(), test_size=test_fraction, stratify=ds.y, random_state=seed
    )
    return _subset(ds, sorted(train_idx)), _subset(ds, sorted(test_idx))


def _subset(ds: TabularDataset, idx: list) -> TabularDataset:
    return TabularDataset(
        name=ds.name, X=ds.X.loc[idx].reset_index(drop=True), y=ds.y.loc[idx].reset_index(drop=True),
        target=ds.target, description=ds.description, positive_label=ds.positive_label,
        negative_label=ds.negative_label, warnings=list(ds.warnings),
    )


def write_table(ds: TabularDataset, path) -> None:
    """Parquet with the target as the last column."""
    frame = ds.X.copy()
    frame[ds.target] = ds.y.to_numpy()
    frame.to_parquet(path, index=False)


def read_train(path, target: str) -> tuple[pd.DataFrame, pd.Series]:
    frame = pd.read_parquet(path)
    return frame.drop(columns=[target]), frame[target].astype("int64")
