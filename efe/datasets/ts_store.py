"""Series on disk for a run: long-format Parquet (item_id, position, target), order preserved."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd


def write_series(path: str | Path, series: dict[str, np.ndarray]) -> None:
    frames = [pd.DataFrame({"item_id": str(k), "position": np.arange(len(v)), "target": np.asarray(v, dtype="float64")})
              for k, v in series.items()]
    pd.concat(frames, ignore_index=True).to_parquet(path, index=False)


def read_series(path: str | Path) -> dict[str, np.ndarray]:
    frame = pd.read_parquet(path)
    out: dict[str, np.ndarray] = {}
    for item_id in pd.unique(frame["item_id"]):
        part = frame[frame["item_id"] == item_id].sort_values("position")
        out[str(item_id)] = part["target"].to_numpy(dtype="float64")
    return out
