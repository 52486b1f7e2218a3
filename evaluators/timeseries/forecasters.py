"""The fixed downstream forecasters that score a time-series transform, behind one interface.

Every forecaster takes a batch of 1-D histories (different lengths, NaN allowed) and returns
quantile forecasts of shape ``(n_series, horizon, n_levels)``: float64, finite, non-decreasing
along the levels. The search only changes what the forecaster sees, never the forecaster, so
none of them is tuned per program; and a forecaster never fails a whole batch because one
series is awkward: that series falls back to seasonal naive (or to its last value).
Most forecast each history on its own; ``mlforecast`` is global (``global_model = True``): one
LightGBM across the histories of a batch, so its forecast of a window depends on the batch.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping, Protocol, Sequence

import numpy as np

log = logging.getLogger(__name__)


class Forecaster(Protocol):
    name: str

    def forecast(self, histories: list[np.ndarray], horizon: int, season: int,
                 quantile_levels: Sequence[float]) -> np.ndarray: ...


# --------------------------------------------------------------------------- shared helpers

def _check_request(horizon: int, quantile_levels: Sequence[float]) -> list[float]:
    levels = [float(q) for q in quantile_levels]
    if horizon < 1:
        raise ValueError(f"horizon must be at least 1, got {horizon}")
    if 0.5 not in levels or not all(0.0 < q < 1.0 for q in levels):
        raise ValueError(f"quantile_levels must lie in (0, 1) and contain 0.5, got {levels}")
    return levels


def _fill_missing(y: np.ndarray) -> np.ndarray:
    """Linear interpolation inside, last/first value carried at the ends (classical models need no NaN)."""
    ok = np.isfinite(y)
    if ok.all() or not ok.any():
        return y
    idx = np.arange(len(y))
    return np.interp(idx, idx[ok], y[ok])


def _repeat_last(y: np.ndarray, horizon: int, n_levels: int) -> np.ndarray:
    finite = y[np.isfinite(y)]
    last = float(finite[-1]) if len(finite) else 0.0
    return np.full((horizon, n_levels), last)


def _seasonal_naive(y: np.ndarray, horizon: int, season: int, levels: list[float]) -> np.ndarray:
    """Fallback of last resort for any model: statsforecast's seasonal naive, else the last value."""
    y = _fill_missing(np.asarray(y, dtype=np.float64))
    if np.isfinite(y).sum() >= 3:
        try:
            out = _statsforecast_quantiles(_sf_model("seasonal_naive"), y, horizon, season, levels)
            if np.isfinite(out).all():
                return out
        except Exception as exc:  # noqa: BLE001 - fall through to the last value
            log.warning("seasonal naive failed on a series of length %d (%s); repeating last value",
                        len(y), exc)
    return _repeat_last(y, horizon, len(levels))


def _finalize(out: np.ndarray, histories: list[np.ndarray], season: int, levels: list[float],
              name: str) -> np.ndarray:
    """Enforce the contract: finite (per-series fallback) and sorted along the levels."""
    out = np.asarray(out, dtype=np.float64)
    for i in np.flatnonzero(~np.isfinite(out).all(axis=(1, 2))):
        log.warning("%s produced non-finite forecasts for series %d; using seasonal naive", name, i)
        out[i] = _seasonal_naive(histories[i], out.shape[1], season, levels)
    return np.sort(out, axis=-1)


# --------------------------------------------------------------------------- classical models

def _sf_model(name: str) -> Callable[[int], Any]:
    # lazy: slow to import (numba)
    from statsforecast.models import AutoETS, AutoTheta, SeasonalNaive

    return {"seasonal_naive": SeasonalNaive, "ets": AutoETS, "theta": AutoTheta}[name]


def _interval_level(q: float) -> float:
    """Quantile q != 0.5 is a bound of the central (100·|1 − 2q|)% interval: lower if q < 0.5."""
    return round(100.0 * abs(1.0 - 2.0 * q), 8)


def _statsforecast_quantiles(model_cls: Callable[..., Any], y: np.ndarray, horizon: int, season: int,
                             levels: list[float]) -> np.ndarray:
    m = season if season >= 2 and len(y) >= 2 * season else 1
    interval_levels = sorted({_interval_level(q) for q in levels if q != 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = model_cls(season_length=m).forecast(y=y, h=horizon, level=interval_levels or None)
    cols = []
    for q in levels:
        if q == 0.5:
            key = "mean"  # point forecast; the median under the models' symmetric Gaussian intervals
        else:
            key = f"{'lo' if q < 0.5 else 'hi'}-{_interval_level(q)}"
        cols.append(np.asarray(res[key], dtype=np.float64))
    return np.stack(cols, axis=-1)


class StatsForecaster:
    """One statsforecast model, fitted per series (single process: the evaluator owns the cores)."""

    def __init__(self, name: str, context_length: int | None = None) -> None:
        self.name = name
        self.context_length = context_length

    def forecast(self, histories: list[np.ndarray], horizon: int, season: int,
                 quantile_levels: Sequence[float]) -> np.ndarray:
        levels = _check_request(horizon, quantile_levels)
        model_cls = _sf_model(self.name)
        out = np.empty((len(histories), horizon, len(levels)))
        for i, h in enumerate(histories):
            y = np.asarray(h, dtype=np.float64).ravel()
            if self.context_length:
                y = y[-int(self.context_length):]
            if np.isfinite(y).sum() < 3:
                out[i] = _repeat_last(y, horizon, len(levels))
                continue
            try:
                out[i] = _statsforecast_quantiles(model_cls, _fill_missing(y), horizon, season, levels)
            except Exception as exc:  # noqa: BLE001 - one awkward series must not fail the batch
                log.warning("%s failed on series %d (length %d): %s; using seasonal naive",
                            self.name, i, len(y), exc)
                out[i] = np.nan  # _finalize substitutes seasonal naive
        return _finalize(out, list(histories), season, levels, self.name)


# --------------------------------------------------------------------------- Chronos models

def _resolve_model_path(name: str, model_path: Any) -> str:
    """A local directory, or a hub id already in the local HF cache: this machine cannot download."""
    hint = (f"set forecaster.model_path for {name!r} to a local model directory, or to a Hugging Face "
            f"hub id that is already in the local cache (e.g. amazon/chronos-2 or "
            f"amazon/chronos-bolt-small); this machine cannot download weights")
    if not model_path:
        raise ValueError(f"forecaster {name!r} needs model_path: {hint}")
    text = str(model_path)
    local = Path(text).expanduser()
    if local.exists() or text.startswith(("/", ".", "~")) or text.count("/") != 1:
        if not (local / "config.json").is_file():
            raise ValueError(f"forecaster model_path '{text}' is not a model directory "
                             f"(no config.json there): {hint}")
        return str(local)
    # lazy: part of the Chronos stack (not a declared dependency); classical forecasters never need it
    from huggingface_hub import try_to_load_from_cache

    if not isinstance(try_to_load_from_cache(text, "config.json"), str):
        raise ValueError(f"forecaster model_path '{text}' is not in the local Hugging Face cache: {hint}")
    return text


class _ChronosForecaster:
    """Shared loading and batching; the pipeline is loaded on first use and kept on the instance."""

    pipeline_class = ""

    def __init__(self, name: str, model_path: str, batch_size: int = 64, context_length: int = 2048) -> None:
        self.name = name
        self.model_path = model_path
        self.batch_size = batch_size
        self.context_length = context_length
        self._pipeline: Any = None

    def _load(self) -> Any:
        if self._pipeline is None:
            import chronos  # lazy: heavy (torch, transformers); only Chronos forecasters need it

            cls = getattr(chronos, self.pipeline_class)
            try:
                self._pipeline = cls.from_pretrained(self.model_path, device_map="cpu")
            except Exception as exc:
                raise ValueError(f"could not load {self.name!r} from model_path '{self.model_path}' "
                                 f"({type(exc).__name__}: {exc}); it must be a {self.pipeline_class} "
                                 f"checkpoint in a local directory or the local HF cache") from exc
        return self._pipeline

    def _context(self, h: np.ndarray) -> np.ndarray:
        y = np.asarray(h, dtype=np.float32).ravel()[-int(self.context_length):]
        y = np.where(np.isfinite(y), y, np.nan).astype(np.float32)  # ±inf → missing
        return y if len(y) else np.array([np.nan], dtype=np.float32)

    def _predict(self, batch: list[np.ndarray], horizon: int, levels: list[float]) -> np.ndarray:
        raise NotImplementedError

    def forecast(self, histories: list[np.ndarray], horizon: int, season: int,
                 quantile_levels: Sequence[float]) -> np.ndarray:
        levels = _check_request(horizon, quantile_levels)
        contexts = [self._context(h) for h in histories]
        parts = [self._predict(contexts[i:i + self.batch_size], horizon, levels)
                 for i in range(0, len(contexts), self.batch_size)]
        out = np.concatenate(parts) if parts else np.empty((0, horizon, len(levels)))
        return _finalize(out, list(histories), season, levels, self.name)


class Chronos2Forecaster(_ChronosForecaster):
    pipeline_class = "Chronos2Pipeline"

    def _predict(self, batch, horizon, levels):
        import torch  # lazy: heavy; only Chronos forecasters need it

        with warnings.catch_warnings():  # horizon beyond the native length only warns
            warnings.simplefilter("ignore")
            quantiles, _ = self._load().predict_quantiles(
                [torch.from_numpy(y) for y in batch], prediction_length=horizon,
                quantile_levels=levels, batch_size=self.batch_size)
        return np.stack([q[0].double().numpy() for q in quantiles])  # each (1 variate, h, Q)


class ChronosBoltForecaster(_ChronosForecaster):
    pipeline_class = "ChronosBoltPipeline"

    def _predict(self, batch, horizon, levels):
        import torch  # lazy: heavy; only Chronos forecasters need it

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            quantiles, _ = self._load().predict_quantiles(
                [torch.from_numpy(y) for y in batch], prediction_length=horizon, quantile_levels=levels)
        return quantiles.double().numpy()  # (batch, h, Q); the pipeline left-pads with NaN


# --------------------------------------------------------------------------- global LightGBM (mlforecast)

class _SeasonPhase:
    """mlforecast date feature on an integer time index: the position within the season (0..m-1)."""

    def __init__(self, season: int) -> None:
        self.season = int(season)
        self.__name__ = "season_phase"

    def __call__(self, ds: Any) -> np.ndarray:
        return np.asarray(ds, dtype=np.int64) % self.season


class MLForecastForecaster:
    """One GLOBAL LightGBM model from Nixtla's ``mlforecast`` over all series of a forecast origin.

    All histories of the batch that end at the same origin (equal length) are fitted together in one
    ``MLForecast.fit`` call, one model across all series, and forecast recursively ``horizon`` steps.
    Histories of different lengths are different origins: with rolling windows they are often the same
    series cut at another point, whose later history holds this window's future, so they get their own
    model (never one that trained on the window's answer). The histories carry no calendar, so time is
    an integer index aligned across the series of an origin; features come from mlforecast's own API:
    ``lags``, seasonal lags (multiples of the season), rolling means of lag 1 (``lag_transforms``) and the
    position within the season (``date_features``).

    Quantiles: mlforecast's conformal prediction intervals (``conformal_windows`` cross-validation
    windows, symmetric around the point forecast, which is used as the median). Where a history is too
    short for them, the fallback keeps the LightGBM point forecast and takes the spread of each level
    from statsforecast's seasonal naive intervals of that history.
    """

    global_model = True  # forecasts depend on the batch: compare programs on the same batches

    def __init__(self, name: str, lags: Sequence[int] = (1, 2, 3), seasonal_lags: Sequence[int] = (1,),
                 rolling_mean_windows: Sequence[int] = (), season_phase: bool = True, n_estimators: int = 50,
                 num_leaves: int = 15, learning_rate: float = 0.1, min_child_samples: int = 5, seed: int = 0,
                 n_jobs: int = 1, conformal_windows: int = 2, context_length: int | None = None) -> None:
        self.name = name
        self.lags = sorted({int(x) for x in lags})
        self.seasonal_lags = sorted({int(x) for x in seasonal_lags})
        self.rolling_mean_windows = sorted({int(x) for x in rolling_mean_windows})
        self.season_phase = bool(season_phase)
        self.lgbm = {"n_estimators": int(n_estimators), "num_leaves": int(num_leaves),
                     "learning_rate": float(learning_rate), "min_child_samples": int(min_child_samples),
                     "random_state": int(seed), "n_jobs": int(n_jobs), "deterministic": True,
                     "force_col_wise": True, "verbose": -1}
        self.conformal_windows = int(conformal_windows)
        self.context_length = context_length
        if not self.lags and not self.seasonal_lags:
            raise ValueError("mlforecast needs at least one lag (params.lags or params.seasonal_lags)")
        if min(self.lags + self.seasonal_lags + self.rolling_mean_windows + [1]) < 1:
            raise ValueError("mlforecast lags, seasonal_lags and rolling_mean_windows must be positive")

    def _model(self, season: int) -> Any:
        # lazy: mlforecast and lightgbm are needed only by this forecaster
        import lightgbm as lgb
        from mlforecast import MLForecast
        from mlforecast.lag_transforms import RollingMean

        lags = set(self.lags)
        if season >= 2:
            lags |= {k * season for k in self.seasonal_lags}
        return MLForecast(
            models={"lgbm": lgb.LGBMRegressor(**self.lgbm)}, freq=1, lags=sorted(lags),
            lag_transforms={1: [RollingMean(window_size=w) for w in self.rolling_mean_windows]}
            if self.rolling_mean_windows else None,
            date_features=[_SeasonPhase(season)] if self.season_phase and season >= 2 else None,
            num_threads=1)

    def _fit_predict(self, ys: list[np.ndarray], horizon: int, season: int, levels: list[float]) -> np.ndarray:
        """One global model over ``ys`` (equal lengths); quantiles (len(ys), horizon, L)."""
        import pandas as pd  # lazy: with mlforecast, only this forecaster builds frames

        n = len(ys[0])
        frame = pd.DataFrame({"unique_id": np.repeat(np.arange(len(ys)), n), "ds": np.tile(np.arange(n), len(ys)),
                              "y": np.concatenate(ys)})
        interval_levels = sorted({_interval_level(q) for q in levels if q != 0.5})
        pred = None
        if interval_levels and self.conformal_windows >= 2:
            from mlforecast.utils import PredictionIntervals  # lazy: mlforecast takes seconds to import

            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model = self._model(season).fit(frame, prediction_intervals=PredictionIntervals(
                        n_windows=self.conformal_windows, h=horizon))
                    pred = model.predict(horizon, level=[_level_arg(v) for v in interval_levels])
            except Exception as exc:  # noqa: BLE001 - too short for conformal windows: seasonal naive spread
                log.debug("mlforecast conformal intervals unavailable (%s); using seasonal naive spread", exc)
        if pred is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                pred = self._model(season).fit(frame).predict(horizon)
        pred = pred.sort_values(["unique_id", "ds"])
        point = pred["lgbm"].to_numpy(dtype=np.float64).reshape(len(ys), horizon)
        out = np.empty((len(ys), horizon, len(levels)))
        for l, q in enumerate(levels):
            if q == 0.5:
                out[:, :, l] = point
                continue
            col = f"lgbm-{'lo' if q < 0.5 else 'hi'}-{_level_arg(_interval_level(q))}"
            if col in pred:
                out[:, :, l] = pred[col].to_numpy(dtype=np.float64).reshape(len(ys), horizon)
            else:
                out[:, :, l] = np.nan  # filled below from the seasonal naive spread
        for i in np.flatnonzero(~np.isfinite(out).all(axis=(1, 2))):
            spread = _seasonal_naive(ys[i], horizon, season, levels)
            spread = spread - spread[:, [levels.index(0.5)]]
            out[i] = np.where(np.isfinite(out[i]), out[i], point[i][:, None] + spread)
        return out

    def forecast(self, histories: list[np.ndarray], horizon: int, season: int,
                 quantile_levels: Sequence[float]) -> np.ndarray:
        levels = _check_request(horizon, quantile_levels)
        out = np.full((len(histories), horizon, len(levels)), np.nan)
        origins: dict[int, list[int]] = {}
        prepared: list[np.ndarray] = []
        for i, h in enumerate(histories):
            y = np.asarray(h, dtype=np.float64).ravel()
            prepared.append(y)
            if np.isfinite(y).sum() < 3:
                out[i] = _repeat_last(y, horizon, len(levels))
                continue
            origins.setdefault(len(y), []).append(i)
        for members in origins.values():
            ys = [_fill_missing(prepared[i]) for i in members]
            if self.context_length:
                ys = [y[-int(self.context_length):] for y in ys]
            try:
                out[members] = self._fit_predict(ys, horizon, season, levels)
            except Exception as exc:  # noqa: BLE001 - e.g. histories shorter than the lags: seasonal naive
                log.warning("mlforecast failed on %d histories of length %d (%s); using seasonal naive",
                            len(members), len(prepared[members[0]]), exc)
        return _finalize(out, list(histories), season, levels, self.name)


def _level_arg(level: float) -> int | float:
    """mlforecast names interval columns after the level as given: 80 -> 'lo-80', 80.5 -> 'lo-80.5'."""
    return int(level) if float(level).is_integer() else float(level)


# --------------------------------------------------------------------------- factory

CLASSICAL = ("seasonal_naive", "ets", "theta")
BOUNDED_HISTORY = CLASSICAL + ("mlforecast",)  # forecasters whose history with_max_history caps

FORECASTERS: dict[str, Callable[..., Forecaster]] = {
    "chronos2": Chronos2Forecaster,
    "chronos_bolt": ChronosBoltForecaster,
    "mlforecast": MLForecastForecaster,
    "seasonal_naive": StatsForecaster,
    "ets": StatsForecaster,
    "theta": StatsForecaster,
}


def with_max_history(cfg: Mapping[str, Any], max_history: int | None) -> dict:
    """A classical (or mlforecast) forecaster's config that sees at most ``max_history`` points of each history.

    Bounds the cost of a fit by the horizon and season rather than by the series length; an explicit
    ``params.context_length`` wins, and Chronos models keep their own ``context_length``.
    """
    cfg = dict(cfg)
    params = dict(cfg.get("params") or {})
    if max_history and cfg.get("name") in BOUNDED_HISTORY and not params.get("context_length"):
        cfg["params"] = {**params, "context_length": int(max_history)}
    return cfg


def make_forecaster(cfg: Mapping[str, Any]) -> Forecaster:
    """Build a forecaster from its config group: ``{"name", "model_path" (Chronos), "params"}``."""
    cfg = dict(cfg)
    name = cfg.get("name")
    if name not in FORECASTERS:
        raise ValueError(f"unknown forecaster {name!r}; choose one of {sorted(FORECASTERS)}")
    params = dict(cfg.get("params") or {})
    if name.startswith("chronos"):
        params["model_path"] = _resolve_model_path(name, cfg.get("model_path") or params.get("model_path"))
    try:
        return FORECASTERS[name](name, **params)
    except TypeError as exc:
        raise ValueError(f"bad params for forecaster {name!r}: {exc}") from exc
