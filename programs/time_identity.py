"""Identity normalization program: the seed of every time-series search.

Contract (see DESIGN.md): ``build_transform_program(seed)`` returns an object with
``fit(y_hist, meta) -> state`` (plain data; must include ``hist_len``),
``transform(y, state) -> array`` (same length, order and NaN positions) and
``inverse_transform(z, state) -> array`` (maps forecasts of any horizon length back).
"""

# EVOLVE-BLOCK-START
import numpy as np


class TransformProgram:
    """Leaves the series unchanged; evolution rewrites this block."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, y_hist: np.ndarray, meta: dict) -> dict:
        return {"hist_len": int(len(y_hist))}

    def transform(self, y: np.ndarray, state: dict) -> np.ndarray:
        return np.asarray(y, dtype=float).copy()

    def inverse_transform(self, z: np.ndarray, state: dict) -> np.ndarray:
        return np.asarray(z, dtype=float).copy()
# EVOLVE-BLOCK-END


def build_transform_program(seed: int = 0) -> TransformProgram:
    return TransformProgram(seed)
