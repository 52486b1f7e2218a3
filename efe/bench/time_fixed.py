"""Fixed, standard normalizations for the time-series benchmark, written as efe programs."""

STANDARDIZE = '''
# EVOLVE-BLOCK-START
import numpy as np


class TransformProgram:
    """Per-series standardisation: (y - mean) / std of the history."""

    def __init__(self, seed=0):
        self.seed = seed

    def fit(self, y_hist, meta):
        y = np.asarray(y_hist, dtype=float)
        mean = float(np.nanmean(y)) if np.isfinite(y).any() else 0.0
        std = float(np.nanstd(y)) if np.isfinite(y).any() else 1.0
        return {"hist_len": int(len(y)), "mean": mean, "std": std if std > 1e-12 else 1.0}

    def transform(self, y, state):
        return (np.asarray(y, dtype=float) - state["mean"]) / state["std"]

    def inverse_transform(self, z, state):
        return np.asarray(z, dtype=float) * state["std"] + state["mean"]
# EVOLVE-BLOCK-END


def build_transform_program(seed=0):
    return TransformProgram(seed)
'''

LOG = '''
# EVOLVE-BLOCK-START
import numpy as np


class TransformProgram:
    """log(y + shift), the shift making the history positive; continued linearly below a floor."""

    def __init__(self, seed=0):
        self.seed = seed

    def fit(self, y_hist, meta):
        y = np.asarray(y_hist, dtype=float)
        low = float(np.nanmin(y)) if np.isfinite(y).any() else 0.0
        scale = float(np.nanmedian(np.abs(y))) if np.isfinite(y).any() else 1.0
        shift = 0.0 if low > 0 else -low + max(scale, 1.0) * 0.01 + 1e-9
        floor = max((low + shift) * 0.5, 1e-12)
        return {"hist_len": int(len(y)), "shift": shift, "floor": floor}

    def transform(self, y, state):
        u = np.asarray(y, dtype=float) + state["shift"]
        f = state["floor"]
        return np.where(u >= f, np.log(np.maximum(u, f)), np.log(f) + (u - f) / f)

    def inverse_transform(self, z, state):
        z = np.asarray(z, dtype=float)
        f = state["floor"]
        lf = np.log(f)
        u = np.where(z >= lf, np.exp(np.minimum(z, 700.0)), f + (z - lf) * f)
        return u - state["shift"]
# EVOLVE-BLOCK-END


def build_transform_program(seed=0):
    return TransformProgram(seed)
'''

FIXED = {"standardize": STANDARDIZE, "log": LOG}
