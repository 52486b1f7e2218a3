"""Frozen programs as objects a data scientist uses: a scikit-learn transformer, a normalization.

Both settings run the frozen program in the sandbox by default (``efe.frozen.sandboxed``), after
its files have been checked against the manifest (every file, none left out) and its source has
passed the sandbox's static policy check: nothing of the program runs in this process, not even its
module-level code. ``sandboxed=False`` is the explicit choice to trust the directory: the program
then runs in this process, still only after those checks (see ``load_program``).
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from efe.core.contracts import TAB, TIME
from efe.frozen.freeze import FrozenProgram, FrozenProgramError, instantiate, load_frozen
from efe.rundir.paths import frozen_dir_of
from efe.frozen.sandboxed import SandboxedProgram, frozen_limits
from efe.frozen.review_log import require_approval
from efe.core.errors import FrozenInputError, FrozenRunError
from efe.core.series_meta import history_meta


def coerce_to_schema(X: Any, schema: list[dict], where: str = "the input") -> pd.DataFrame:
    """The columns a frozen program expects, in its order and types, or an error naming the problem."""
    names = [c["name"] for c in schema]
    if hasattr(X, "tocsr") or type(X).__module__.startswith("scipy.sparse"):
        raise TypeError("sparse input is not supported: the frozen program works on a DataFrame with the "
                        f"columns {', '.join(names)}")
    if not isinstance(X, pd.DataFrame):
        arr = np.asarray(X)
        if arr.ndim != 2 or arr.shape[1] != len(names):
            n_features = arr.shape[1] if arr.ndim == 2 else "?"
            raise FrozenInputError(f"{where} has shape {arr.shape} (n_features = {n_features}); the frozen program "
                             f"expects {len(names)} columns ({', '.join(names)}); pass a DataFrame with these names")
        X = pd.DataFrame(arr, columns=names)
    missing = [n for n in names if n not in X.columns]
    if missing:
        found = [str(c) for c in X.columns]
        hints = []
        spare = {c.lower(): c for c in found if c not in names}
        for name in missing:
            close = difflib.get_close_matches(name.lower(), list(spare), n=1)
            if close:
                hints.append(f"'{spare[close[0]]}' looks like a renamed '{name}'")
        hint = f" ({'; '.join(hints)})" if hints else ""
        shown = ", ".join(found[:20]) + (" …" if len(found) > 20 else "")
        raise FrozenInputError(f"column{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
                         f"missing from {where} (expected by the frozen program; found: {shown}){hint}")
    out = {}
    for col in schema:
        name, dtype = col["name"], col["dtype"]
        s = X[name]
        expected_numeric = dtype.startswith(("int", "uint", "float", "Int", "Float", "UInt"))
        if expected_numeric and not pd.api.types.is_numeric_dtype(s):
            converted = pd.to_numeric(s, errors="coerce")
            bad = converted.isna() & s.notna()
            if bad.any():
                raise FrozenInputError(f"column '{name}' in {where} should be numeric ({dtype} when frozen) but holds "
                                 f"text such as {s[bad].iloc[0]!r}")
            s = converted
        elif dtype == "bool" and not pd.api.types.is_bool_dtype(s):
            if not set(pd.unique(s.dropna())) <= {0, 1, True, False}:
                raise FrozenInputError(f"column '{name}' in {where} should be boolean (as when frozen), got {s.dtype}")
            s = s.astype("bool") if not s.isna().any() else s
        elif dtype in ("object", "str", "string") and pd.api.types.is_numeric_dtype(s) and not s.isna().all():
            raise FrozenInputError(f"column '{name}' in {where} should be text (as when frozen) but is {s.dtype}")
        if expected_numeric and dtype.startswith("float") and s.dtype != dtype:
            s = s.astype(dtype)
        out[name] = s
    return pd.DataFrame(out, index=X.index)


class FrozenFeatureProgram(TransformerMixin, BaseEstimator):
    """A frozen tabular feature program as a scikit-learn transformer.

    ``refit=False`` (default) applies the state fitted at freeze time; ``refit=True`` learns the
    program's state anew from the ``X, y`` given to ``fit`` (the program's own ``fit``).
    ``sandboxed=True`` (default) runs the program's code only in the sandbox, never in this process;
    ``sandboxed=False`` trusts the directory and runs it here (after the hash and policy checks).
    ``require_isolation=True`` refuses to run it where the kernel gives the sandbox no isolation (None: conf/apply.yaml
    ``sandbox_limits.require_isolation``).
    """

    def __init__(self, path: str | Path | None = None, refit: bool = False, sandboxed: bool = True,
                 require_isolation: bool | None = None) -> None:
        self.path = path
        self.refit = refit
        self.sandboxed = sandboxed
        self.require_isolation = require_isolation

    def fit(self, X: Any, y: Any = None) -> "FrozenFeatureProgram":
        frozen = _load(self.path, "tab")
        self.manifest_ = frozen.manifest
        self.schema_ = frozen.manifest.get("input_schema", [])
        X = coerce_to_schema(X, self.schema_)
        self.program_ = (SandboxedProgram(frozen.source, frozen.state, frozen_limits(self.require_isolation),
                                          shared=True) if _sandboxed(self.sandboxed, self.require_isolation)
                         else instantiate(frozen.source, TAB.factory))
        if self.refit:
            if y is None:
                raise ValueError("refit=True needs the labels y to fit the program's state")
            self.state_ = self.program_.fit(X.copy(), pd.Series(np.asarray(y), index=X.index))
        else:
            self.state_ = frozen.state
        self.feature_names_in_ = np.asarray([c["name"] for c in self.schema_], dtype=object)
        self.n_features_in_ = len(self.schema_)
        self.output_columns_ = list(self._apply(X.iloc[:1].copy()).columns) \
            if len(X) else list(frozen.manifest.get("output_columns", []))
        return self

    def _apply(self, X: pd.DataFrame) -> Any:
        if self.sandboxed:
            return self.program_.transform(X)
        return self.program_.transform(X, self.state_)

    def transform(self, X: Any) -> pd.DataFrame:
        check_is_fitted(self, "state_")
        X = coerce_to_schema(X, self.schema_)
        out = self._apply(X)
        if not isinstance(out, pd.DataFrame):
            raise TypeError(f"the frozen program returned {type(out).__name__}, expected a DataFrame")
        return out

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        check_is_fitted(self, "state_")
        return np.asarray(self.output_columns_, dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        tags.input_tags.categorical = True
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags


class FrozenNormalization:
    """A frozen time-series normalization: fit on a history, transform, inverse-transform forecasts.

    ``sandboxed=True`` (default): each ``fit``, ``transform`` and ``inverse_transform`` runs in the
    sandbox (the state a ``fit`` returns is plain data, kept here and sent with each call);
    ``sandboxed=False`` trusts the directory and runs the program in this process. ``require_isolation``:
    as for ``FrozenFeatureProgram``.
    """

    def __init__(self, path: str | Path, sandboxed: bool = True, require_isolation: bool | None = None) -> None:
        frozen = _load(path, "time")
        self.path = Path(path)
        self.manifest = frozen.manifest
        self.sandboxed = _sandboxed(sandboxed, require_isolation)
        self.program = (SandboxedProgram(frozen.source, limits=frozen_limits(require_isolation), setting=TIME.setting,
                                         shared=True) if self.sandboxed
                        else instantiate(frozen.source, TIME.factory))
        self.state_: dict | None = None

    def fit(self, y_hist: Any, meta: dict | None = None) -> "FrozenNormalization":
        y = np.asarray(y_hist, dtype="float64")
        meta = meta or history_meta(y, int(self.manifest.get("prediction_length", 1)),
                                    int(self.manifest.get("season", 1)))
        fit = self.program.fit_series if self.sandboxed else self.program.fit
        self.state_ = fit(y.copy(), meta)
        return self

    def transform(self, y: Any) -> np.ndarray:
        self._check()
        call = self.program.transform_series if self.sandboxed else self.program.transform
        return np.asarray(call(np.asarray(y, dtype="float64").copy(), self.state_), dtype="float64")

    def fit_transform(self, y_hist: Any, meta: dict | None = None) -> np.ndarray:
        return self.fit(y_hist, meta).transform(y_hist)

    def inverse_transform(self, z: Any) -> np.ndarray:
        self._check()
        call = self.program.inverse_series if self.sandboxed else self.program.inverse_transform
        return np.asarray(call(np.asarray(z, dtype="float64").copy(), self.state_), dtype="float64")

    def _check(self) -> None:
        if self.state_ is None:
            raise RuntimeError("call fit(y_hist) on the history first: the normalization is fitted per series")


def _load(path: Any, setting: str) -> FrozenProgram:
    if path is None:
        raise ValueError("no path given: pass the frozen/ directory of a run (or the run directory)")
    p = frozen_dir_of(path)
    frozen = load_frozen(p)
    if frozen.manifest.get("setting") != setting:
        raise FrozenProgramError(f"'{p}' holds a {frozen.manifest.get('setting')} program, not a {setting} one")
    return frozen


def _sandboxed(sandboxed: bool, require_isolation: bool | None) -> bool:
    """``sandboxed``, refused when it contradicts ``require_isolation=True``."""
    if require_isolation and not sandboxed:
        raise FrozenRunError("require_isolation=True asks for the sandbox's kernel isolation, but sandboxed=False runs "
                             "the program in this process: drop one of the two")
    return sandboxed


def load_program(path: str | Path, refit: bool = False, sandboxed: bool = True, require_review: bool = False,
                 require_isolation: bool | None = None) -> FrozenFeatureProgram | FrozenNormalization:
    """A frozen program (a run directory or its frozen/ folder), ready to use.

    Tabular programs come back as a scikit-learn transformer. With ``refit=False`` (default) it is
    already fitted: ``transform`` applies the state learnt at freeze time, and ``fit`` inside a
    ``Pipeline`` keeps that state. With ``refit=True`` it is returned unfitted and ``fit(X, y)``
    re-learns the program's state (its encodings, bins, statistics) from the data given to ``fit``:
    the same reviewed code, new data. Time-series programs come back as a normalization with
    ``fit`` / ``transform`` / ``inverse_transform`` that is fitted on each history anyway.
    Every file is checked against the manifest and the source against the sandbox's static policy
    before any of it runs. ``sandboxed=True`` (default) then runs the program (its module-level code,
    ``fit``, ``transform``, ``inverse_transform``) only in the sandbox; ``sandboxed=False`` is the
    explicit choice to trust the directory and run it in this process (still after those checks,
    which a directory's writer can defeat by rewriting the manifest). ``require_review=True`` refuses a program that no one approved with ``python -m efe.review``
    (or that changed since). ``require_isolation=True`` refuses to run it where the kernel gives the sandbox no
    isolation (namespaces refused, no seccomp); None reads conf/apply.yaml ``sandbox_limits.require_isolation``.
    """
    if require_review:
        require_approval(path)
    p = frozen_dir_of(path)
    manifest = load_frozen(p).manifest  # every check, before anything of the program is used
    if manifest.get("setting") == "time":
        return FrozenNormalization(p, sandboxed=sandboxed, require_isolation=require_isolation)
    if refit:
        return FrozenFeatureProgram(p, refit=True, sandboxed=sandboxed, require_isolation=require_isolation)
    # fit() loads and hash-checks the files; the manifest already holds the schema to fit on
    empty = pd.DataFrame({c["name"]: pd.Series(dtype=c["dtype"] if c["dtype"] != "str" else "object")
                          for c in manifest.get("input_schema", [])})
    return FrozenFeatureProgram(p, sandboxed=sandboxed, require_isolation=require_isolation).fit(empty)
