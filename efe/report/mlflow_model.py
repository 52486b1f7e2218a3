"""The frozen program as an MLflow model: a ``pyfunc`` flavor (every setting) and, for tables, the sklearn
flavor, both running the program in the sandbox wherever the model is loaded.

``mlflow.pyfunc.load_model(uri).predict(frame)`` returns the new features (tables) or the normalized series
(time series: a ``y`` column, grouped by ``unique_id`` when present, comes back with a ``z`` column);
``mlflow.sklearn.load_model(uri)`` returns a fitted scikit-learn transformer. Both go through the public
``efe.load_program`` (its checks: every file against the manifest, the source against the static policy),
so loading needs efe installed; the model's ``requirements.txt`` names it.

Imported only when ``tracking=mlflow`` (mlflow is an optional dependency).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import tempfile
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterator

import cloudpickle  # mlflow's own dependency; pickles efe's classes by reference (efe installed where loaded)
import mlflow
import numpy as np
import sklearn
import pandas as pd
from mlflow.entities import LoggedModelOutput, LoggedModelStatus
from mlflow.models import Model, infer_signature
from mlflow.pyfunc import PythonModel
from sklearn.base import BaseEstimator, TransformerMixin

import efe
from efe.core.contracts import TAB
from efe.core.specs import load_spec
from efe.rundir.paths import FROZEN

MODEL_NAME = "frozen_program"
SERIES_ID = "unique_id"  # the series column of a time-series model's input (optional: one series without it)


def _load_frozen(path: str | Path, setting: str) -> Any:
    """The frozen program through the public API; tabular programs run sandboxed."""
    if setting == TAB.setting:
        return efe.load_program(path, sandboxed=True)
    return efe.load_program(path)  # a time-series normalization: the API's default reload


class FrozenProgramModel(PythonModel):
    """The pyfunc flavor: the run's ``frozen/`` directory (an artifact of the model), loaded with
    ``efe.load_program``."""

    def __init__(self, setting: str) -> None:
        self.setting = setting
        self.program: Any = None

    def load_context(self, context: Any) -> None:
        self.program = _load_frozen(context.artifacts["frozen"], self.setting)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict | None = None) -> pd.DataFrame:
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        if self.setting == TAB.setting:
            return self.program.transform(frame)
        return normalize_series(self.program, frame)


def normalize_series(program: Any, frame: pd.DataFrame) -> pd.DataFrame:
    """Each series (``unique_id``, or the whole frame) fitted on its own ``y`` and transformed into ``z``."""
    if "y" not in frame.columns:
        raise ValueError(f"a time-series model's input needs a 'y' column (and optionally '{SERIES_ID}'); "
                         f"got {', '.join(map(str, frame.columns))}")
    out = frame.copy()
    out["z"] = np.nan
    groups = frame.groupby(SERIES_ID, sort=False).indices.values() if SERIES_ID in frame.columns \
        else [np.arange(len(frame))]
    for rows in groups:
        y = frame["y"].to_numpy(dtype="float64")[rows]
        out.iloc[rows, out.columns.get_loc("z")] = program.fit(y).transform(y)
    return out


class PortableFrozenProgram(TransformerMixin, BaseEstimator):
    """The sklearn flavor: the frozen directory's files carried inside the estimator (a pickle of this
    object is self-contained), fitted at freeze time, run sandboxed through ``efe.load_program``."""

    def __init__(self, files: dict[str, bytes] | None = None) -> None:
        self.files = files

    def fit(self, X: Any = None, y: Any = None) -> "PortableFrozenProgram":
        return self  # the state was learnt when the program was frozen

    def transform(self, X: Any) -> pd.DataFrame:
        return self._program().transform(X)

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return self._program().get_feature_names_out(input_features)

    def _program(self) -> Any:
        loaded = self.__dict__.get("_loaded")
        if loaded is None:
            with tempfile.TemporaryDirectory(prefix="efe-mlflow-") as tmp:
                for name, data in (self.files or {}).items():
                    (Path(tmp) / name).write_bytes(data)
                loaded = _load_frozen(tmp, TAB.setting)  # the files are read (and checked) here, once
            self.__dict__["_loaded"] = loaded
        return loaded

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state.pop("_loaded", None)
        return state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.string = True
        tags.requires_fit = False
        return tags


def _requirements() -> list[str]:
    out = []
    for name in ("efe", "mlflow-skinny", "pandas", "numpy", "scikit-learn", "pyarrow"):
        try:
            out.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            out.append(name)
    return out


def _sample(run_dir: Path, frozen_dir: Path, setting: str, rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A few training rows (the frozen program's input columns) and what the program makes of them."""
    if setting == TAB.setting:
        program = _load_frozen(frozen_dir, setting)
        names = [str(n) for n in program.feature_names_in_]
        frame = pd.read_parquet(load_spec(run_dir / "spec.json").train_path, columns=names).head(rows)
        return frame, program.transform(frame)
    # a time series: a short positive ramp stands for the input's shape (the signature records columns and types)
    frame = pd.DataFrame({SERIES_ID: "series_0", "y": np.linspace(1.0, 2.0, max(rows, 8))})
    return frame, normalize_series(_load_frozen(frozen_dir, setting), frame)


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """MLflow's advice while saving (type hints, models from code, an input example) and its progress bars
    are not the user's business here: the signature is given and the pickled class is efe's own."""
    logger = logging.getLogger("mlflow")
    level = logger.level
    previous = os.environ.get("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR")
    os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = "false"
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            yield
    finally:
        logger.setLevel(level)
        if previous is None:
            os.environ.pop("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", None)
        else:
            os.environ["MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"] = previous


def log_frozen_model(client: Any, experiment_id: str, run_id: str, run_dir: Path, setting: str,
                     sample_rows: int) -> str:
    """Log ``run_dir/frozen`` as an MLflow model of the run; its ``models:/`` URI."""
    frozen_dir = run_dir / FROZEN
    sample_in, sample_out = _sample(run_dir, frozen_dir, setting, sample_rows)
    signature = infer_signature(sample_in, sample_out)
    model = client.create_logged_model(experiment_id=experiment_id, name=MODEL_NAME, source_run_id=run_id,
                                       tags={"efe.setting": setting}, model_type="efe-" + setting)
    with tempfile.TemporaryDirectory(prefix="efe-mlflow-") as tmp:
        local = Path(tmp) / "model"
        meta = Model(artifact_path=model.artifact_location, model_uuid=model.model_id, run_id=run_id,
                     model_id=model.model_id)
        with _quiet():
            mlflow.pyfunc.save_model(str(local), python_model=FrozenProgramModel(setting),
                                     artifacts={"frozen": str(frozen_dir)}, signature=signature, mlflow_model=meta,
                                     pip_requirements=_requirements())
        if setting == TAB.setting:
            files = {p.name: p.read_bytes() for p in sorted(frozen_dir.iterdir()) if p.is_file()}
            with open(local / "model.pkl", "wb") as fh:
                cloudpickle.dump(PortableFrozenProgram(files), fh)
            meta.add_flavor("sklearn", pickled_model="model.pkl", sklearn_version=sklearn.__version__,
                            serialization_format="cloudpickle", code=None)
            meta.save(str(local / "MLmodel"))
        shutil.rmtree(local / "__pycache__", ignore_errors=True)
        client.log_model_artifacts(model.model_id, str(local))
    client.log_outputs(run_id, [LoggedModelOutput(model.model_id, step=0)])
    client.finalize_logged_model(model.model_id, LoggedModelStatus.READY)
    return f"models:/{model.model_id}"
