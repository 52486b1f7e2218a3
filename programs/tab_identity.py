"""Identity feature program: the seed of every tabular search.

Contract (see DESIGN.md): ``build_feature_program(seed)`` returns an object with
``fit(X, y) -> state`` (a dict of plain data learnt from the fitting pool only) and
``transform(X, state) -> DataFrame`` (same rows and index as X; new columns may be added,
original columns kept unchanged or dropped). ``transform`` never sees labels and must treat
each row on its own.
"""

# EVOLVE-BLOCK-START
import numpy as np
import pandas as pd


class FeatureProgram:
    """Returns the input unchanged; evolution rewrites this block."""

    def __init__(self, seed: int = 0):
        self.seed = seed

    def fit(self, X: pd.DataFrame, y: pd.Series) -> dict:
        return {"columns": list(X.columns)}

    def transform(self, X: pd.DataFrame, state: dict) -> pd.DataFrame:
        return X.copy()
# EVOLVE-BLOCK-END


def build_feature_program(seed: int = 0) -> FeatureProgram:
    return FeatureProgram(seed)
