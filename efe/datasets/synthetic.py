"""Smooth exponential-growth series (EFE paper, appendix C.6).

Each series draws its own start value ``y0`` and overall growth ratio ``R`` log-uniformly, and its own
noise parameters (a parameter given as a ``(low, high)`` pair is drawn uniformly per series; a single
number is used as is). With ``G = log R``, ``T = length`` and ``smooth(sigma)`` = Gaussian white noise
convolved with a Gaussian kernel of standard deviation ``sigma`` steps, normalised to zero mean and
unit root-mean-square:

    w_t   = exp(growth_volatility * smooth_t(sigma))          t = 1..T-1   positive growth weights
    g_t   = G * w_t / sum_s w_s                               increments sum exactly to G
    x_t   = log y0 + sum_{s<=t} g_s                            latent log-trend (empty sum at t = 0)
    m_t   = exp(x_t)                                          monotone, m_0 = y0, m_{T-1} = y0 * R
    y_t   = m_t * exp(obs_noise * smooth'_t(sigma))           second, independent smooth noise

The clean log-linear baseline of the paper is ``y0 * R ** (t / (T-1))`` (all weights equal).
Series ``i`` depends only on ``(seed, i)``, so adding series never changes the earlier ones.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any, Mapping, Union

import numpy as np

from efe.datasets.errors import TimeSeriesError

Range = Union[float, tuple[float, float]]


@dataclass(frozen=True)
class SyntheticExpParams:
    n_series: int = 50
    length: int = 120
    start_low: float = 1.0
    start_high: float = 1000.0
    growth_low: float = 2.0            # overall ratio y_end / y_start, log-uniform in [low, high]
    growth_high: float = 100.0
    smoothing_width: Range = 8.0       # Gaussian kernel sigma in steps, for both smooth noises
    growth_volatility: Range = 0.5     # sigma of the log growth weights
    obs_noise: Range = 0.05            # scale of the smooth multiplicative observation noise

    @classmethod
    def from_mapping(cls, cfg: Mapping[str, Any]) -> "SyntheticExpParams":
        """Known field names from a config (lists become ranges); other keys are ignored."""
        kwargs = {}
        for f in fields(cls):
            if f.name in cfg and cfg[f.name] is not None:
                value = cfg[f.name]
                if isinstance(value, Sequence) and not isinstance(value, str):
                    value = tuple(float(v) for v in value)
                kwargs[f.name] = value
        return cls(**kwargs)

    def validate(self) -> None:
        def bad(msg: str) -> ValueError:
            return TimeSeriesError(f"synthetic_exp: {msg}")

        if int(self.n_series) != self.n_series or self.n_series < 1:
            raise bad(f"n_series must be a positive integer, got {self.n_series!r}")
        if int(self.length) != self.length or self.length < 2:
            raise bad(f"length must be an integer of at least 2, got {self.length!r}")
        for lo, hi, what, floor in ((self.start_low, self.start_high, "start", 0.0),
                                    (self.growth_low, self.growth_high, "growth", 1.0)):
            if not ((lo >= floor if floor else lo > 0) and lo <= hi and np.isfinite(hi)):
                raise bad(f"{what}_low/{what}_high must satisfy {floor:g} {'<=' if floor else '<'} low <= high, "
                          f"got {lo!r}, {hi!r}")
        for name in ("smoothing_width", "growth_volatility", "obs_noise"):
            lo, hi = _bounds(getattr(self, name), name, bad)
            if not (0 <= lo <= hi and np.isfinite(hi)):
                raise bad(f"{name} must be >= 0 (or a range 0 <= low <= high), got {getattr(self, name)!r}")


def generate(params: SyntheticExpParams, seed: int) -> dict[str, np.ndarray]:
    """``{"exp_000": values, ...}``: strictly positive float64 arrays of ``params.length``."""
    return {key: obs for key, (obs, _) in _generate(params, seed).items()}


def latent_trends(params: SyntheticExpParams, seed: int) -> dict[str, np.ndarray]:
    """The noise-free monotone trends ``m_t`` behind :func:`generate` (same seed, same draws)."""
    return {key: trend for key, (_, trend) in _generate(params, seed).items()}


def describe(params: SyntheticExpParams) -> str:
    def show(v: Range) -> str:
        return f"{v[0]:g}-{v[1]:g} (drawn per series)" if isinstance(v, tuple) else f"{v:g}"

    return (
        f"Synthetic smooth exponential growth: {params.n_series} independent series of {params.length} "
        f"steps. Each series starts at a value drawn log-uniformly in [{params.start_low:g}, "
        f"{params.start_high:g}] and grows by an overall factor drawn log-uniformly in "
        f"[{params.growth_low:g}, {params.growth_high:g}] over the whole series, so levels differ by "
        "orders of magnitude between series and within a series. The latent trend is monotone "
        "increasing: its log rises by positive increments whose rate drifts smoothly "
        f"(log-rate volatility {show(params.growth_volatility)}, smoothing width "
        f"{show(params.smoothing_width)} steps). Observations are the trend times smooth multiplicative "
        f"noise (log-scale {show(params.obs_noise)}): no spikes, no level shifts, no seasonality. "
        "Values are unitless and strictly positive; the timestamps are nominal (one step per period)."
    )


def _generate(params: SyntheticExpParams, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    params.validate()
    n, length = int(params.n_series), int(params.length)
    width = max(3, len(str(n - 1)))
    out = {}
    for i in range(n):
        rng = np.random.default_rng([int(seed), i])
        y0 = float(np.exp(rng.uniform(np.log(params.start_low), np.log(params.start_high))))
        growth = float(rng.uniform(np.log(params.growth_low), np.log(params.growth_high)))  # G = log R
        sigma = _draw(params.smoothing_width, rng)
        volatility = _draw(params.growth_volatility, rng)
        obs_scale = _draw(params.obs_noise, rng)

        weights = np.exp(volatility * _smooth_noise(length - 1, sigma, rng))
        increments = growth * weights / weights.sum()
        log_trend = np.log(y0) + np.concatenate(([0.0], np.cumsum(increments)))
        log_trend[-1] = np.log(y0) + growth  # exact endpoint, free of summation rounding
        trend = np.exp(log_trend)
        observed = trend * np.exp(obs_scale * _smooth_noise(length, sigma, rng))
        out[f"exp_{i:0{width}d}"] = (observed.astype(np.float64), trend.astype(np.float64))
    return out


def _smooth_noise(n: int, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """White noise convolved with a Gaussian kernel (no edge shrinkage), then zero mean, unit RMS."""
    if sigma <= 0:
        z = rng.standard_normal(n)
    else:
        half = int(np.ceil(4.0 * sigma))
        taps = np.arange(-half, half + 1, dtype=np.float64)
        kernel = np.exp(-0.5 * (taps / sigma) ** 2)
        kernel /= kernel.sum()
        z = np.convolve(rng.standard_normal(n + 2 * half), kernel, mode="valid")
    z = z - z.mean()
    rms = float(np.sqrt(np.mean(z ** 2)))
    return z / rms if rms > 0 else z


def _draw(value: Range, rng: np.random.Generator) -> float:
    if isinstance(value, tuple):
        return float(rng.uniform(value[0], value[1]))
    return float(value)


def _bounds(value: Range, name: str, bad) -> tuple[float, float]:
    if isinstance(value, tuple):
        if len(value) != 2:
            raise bad(f"{name} must be a number or a [low, high] pair, got {list(value)!r}")
        return float(value[0]), float(value[1])
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise bad(f"{name} must be a number or a [low, high] pair, got {value!r}") from None
    return v, v
