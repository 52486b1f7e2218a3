"""Time-series data: bundled collections load offline and regular; the synthetic generator keeps the
paper's promises; long files round-trip; bad input gets a clear error naming the problem."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from efe.datasets.synthetic import SyntheticExpParams, generate, latent_trends
from efe.datasets.timeseries import (
    BUNDLED,
    TimeSeriesError,
    check_lengths,
    default_prediction_length,
    from_long_frame,
    infer_season,
    load_timeseries,
    read_long_frame,
)


def long_frame(n: int = 40, ids=("a", "b"), freq: str = "MS", start: str = "2000-01-01") -> pd.DataFrame:
    return pd.concat([
        pd.DataFrame({"item_id": item, "timestamp": pd.date_range(start, periods=n, freq=freq),
                      "target": np.linspace(1.0, 2.0, n) * (k + 1)})
        for k, item in enumerate(ids)
    ], ignore_index=True)


def load(frame: pd.DataFrame, **kw):
    return from_long_frame(frame, name="toy", id_column="item_id", timestamp_column="timestamp",
                           target_column="target", **kw)


# ------------------------------------------------------------------------------------- bundled

@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_bundled_datasets_load_regular_and_described(name):
    ds = load_timeseries({"name": name})
    assert ds.series and set(ds.series) == set(ds.start)
    assert len(ds.description) > 80
    assert ds.prediction_length >= 1 and ds.season >= 1
    for item, values in ds.series.items():
        assert values.dtype == np.float64
        assert len(values) >= 2 * ds.prediction_length + ds.season
        assert np.isfinite(values[~np.isnan(values)]).all() and np.isnan(values).mean() < 0.1
        index = ds.index(item)
        assert pd.infer_freq(index) is not None and index[0] == ds.start[item]
    # regular: passes the long-format validation unchanged, with the dataset's own frequency
    again = from_long_frame(ds.to_long_frame(), name=name, freq=ds.freq)
    assert again.freq == ds.freq and all(np.array_equal(again.series[k], v, equal_nan=True)
                                         for k, v in ds.series.items())


def test_required_bundled_names_and_seasons():
    assert {"air_passengers", "co2", "sunspots", "elec_equip", "synthetic_exp"} <= set(BUNDLED)
    air = load_timeseries({"name": "air_passengers"})
    assert (air.freq, air.season, air.prediction_length) == ("MS", 12, 12)
    assert air.series["air_passengers"][:3].tolist() == [112.0, 118.0, 132.0]
    assert str(air.start["air_passengers"].date()) == "1949-01-01" and len(air.series["air_passengers"]) == 144
    assert load_timeseries({"name": "sunspots"}).season == 1
    assert len(load_timeseries({"name": "uk_lung_deaths"}).series) == 2


def test_bundled_overrides_and_unknown_name():
    ds = load_timeseries({"name": "air_passengers", "prediction_length": 24, "season": 6, "description": "x"})
    assert (ds.prediction_length, ds.season, ds.description) == (24, 6, "x")
    with pytest.raises(TimeSeriesError, match="unknown time-series dataset 'nope'.*air_passengers"):
        load_timeseries({"name": "nope"})
    with pytest.raises(TimeSeriesError, match="has frequency 'MS'.*cannot change"):
        load_timeseries({"name": "air_passengers", "freq": "D"})


# ------------------------------------------------------------------------------------ synthetic

def test_synthetic_is_deterministic_positive_and_named():
    params = SyntheticExpParams(n_series=5, length=200)
    a, b = generate(params, seed=3), generate(params, seed=3)
    assert list(a) == ["exp_000", "exp_001", "exp_002", "exp_003", "exp_004"]
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert all(v.dtype == np.float64 and v.shape == (200,) and (v > 0).all() for v in a.values())
    other = generate(params, seed=4)
    assert not np.allclose(a["exp_000"], other["exp_000"])
    # series i depends on (seed, i) only: more series leave the first ones unchanged
    assert np.array_equal(generate(SyntheticExpParams(n_series=2, length=200), 3)["exp_001"], a["exp_001"])


def test_synthetic_latent_trend_is_monotone_with_exact_endpoint():
    params = SyntheticExpParams(n_series=20, length=300, obs_noise=0.0, growth_volatility=1.0,
                                smoothing_width=(2.0, 12.0))
    observed = generate(params, seed=0)
    trends = latent_trends(params, seed=0)
    for key, y in observed.items():
        assert np.array_equal(y, trends[key])  # no observation noise: y is the latent trend
        assert (np.diff(y) > 0).all()
        ratio = y[-1] / y[0]
        assert 2.0 <= ratio <= 100.0 and 1.0 <= y[0] <= 1000.0
    # the endpoint ratio is exactly the drawn R: same draws with noise on, same trend endpoints
    noisy = latent_trends(SyntheticExpParams(n_series=20, length=300, growth_volatility=1.0,
                                             smoothing_width=(2.0, 12.0)), seed=0)
    for key in trends:
        assert noisy[key][-1] / noisy[key][0] == pytest.approx(trends[key][-1] / trends[key][0], rel=1e-12)


def test_synthetic_parameters_change_the_output():
    base = SyntheticExpParams(n_series=3, length=150)
    ref = generate(base, 1)

    def differs(**kw):
        out = generate(SyntheticExpParams(**{**base.__dict__, **kw}), 1)
        return not np.allclose(out["exp_000"], ref["exp_000"])

    for change in ({"growth_low": 50.0, "growth_high": 60.0}, {"start_low": 5000.0, "start_high": 6000.0},
                   {"smoothing_width": 1.0}, {"growth_volatility": 2.0}, {"obs_noise": 0.3}):
        assert differs(**change), change
    # more observation noise: larger log deviations from the latent trend
    def log_dev(noise):
        p = SyntheticExpParams(**{**base.__dict__, "obs_noise": noise})
        y, m = generate(p, 1)["exp_000"], latent_trends(p, 1)["exp_000"]
        return float(np.sqrt(np.mean(np.log(y / m) ** 2)))
    assert log_dev(0.05) == pytest.approx(0.05, rel=1e-6) and log_dev(0.2) == pytest.approx(0.2, rel=1e-6)


def test_synthetic_through_the_loader():
    ds = load_timeseries({"name": "synthetic_exp", "n_series": 4, "length": 80, "seed": 7,
                          "prediction_length": 16, "growth_high": 50.0})
    assert len(ds.series) == 4 and ds.lengths == {f"exp_00{i}": 80 for i in range(4)}
    assert (ds.freq, ds.season, ds.prediction_length) == ("D", 1, 16)
    assert "exponential" in ds.description and "seed 7" in ds.description
    again = load_timeseries({"name": "synthetic_exp", "params": {"n_series": 4, "length": 80}, "seed": 7})
    assert not np.array_equal(again.series["exp_000"], ds.series["exp_000"])  # growth_high differs
    monthly = load_timeseries({"name": "synthetic_exp", "n_series": 2, "freq": "MS", "obs_noise": [0.0, 0.1]})
    assert monthly.freq == "MS" and len(monthly.series) == 2
    with pytest.raises(TimeSeriesError, match="growth_low/growth_high"):
        load_timeseries({"name": "synthetic_exp", "growth_low": 0.0})
    with pytest.raises(TimeSeriesError, match="shorter than the 25 steps.*'exp_000' \\(20\\), 'exp_001' \\(20\\)"):
        load_timeseries({"name": "synthetic_exp", "n_series": 2, "length": 20})


# ----------------------------------------------------------------------------------- long files

@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_long_format_round_trip(tmp_path, suffix):
    frame = long_frame(n=100, ids=("x", "y", "z"), freq="W-SAT")
    frame.loc[frame.index[4], "target"] = np.nan  # a missing value survives
    frame = frame.sample(frac=1.0, random_state=0).rename(columns={"item_id": "sku", "target": "sales"})
    path = tmp_path / f"sales.{suffix}"
    frame.to_csv(path, index=False) if suffix == "csv" else frame.to_parquet(path, index=False)
    ds = load_timeseries({"path": str(path), "id_column": "sku", "target_column": "sales"})
    assert ds.name == "sales" and list(ds.series) == sorted(ds.series, key=list(frame["sku"].unique()).index)
    assert (ds.freq, ds.season, ds.prediction_length) == ("W-SAT", 52, 13)
    expected = long_frame(n=100, ids=("x", "y", "z"), freq="W-SAT")
    for k, item in enumerate(("x", "y", "z")):
        want = expected.loc[expected.item_id == item, "target"].to_numpy()
        if item == "x":
            want[4] = np.nan
        np.testing.assert_allclose(ds.series[item], want, rtol=1e-12)  # CSV: last-digit parsing
        assert ds.start[item] == pd.Timestamp("2000-01-01")  # a Saturday
    back = ds.to_long_frame()
    assert list(back.columns) == ["item_id", "timestamp", "target"] and len(back) == 300


def test_frequency_rules():
    assert [infer_season(f) for f in ("M", "MS", "QS", "Q", "W", "D", "h", "15min", "min", "YS", "A")] == \
        [12, 12, 4, 4, 52, 7, 24, 96, 1440, 1, 1]
    assert [default_prediction_length(f) for f in ("MS", "QS", "YS", "W", "D", "h", "15min")] == \
        [12, 8, 6, 13, 30, 48, 48]
    with pytest.raises(TimeSeriesError, match="unknown frequency 'fortnightly'"):
        infer_season("fortnightly")


# ---------------------------------------------------------------------------------------- errors

@pytest.mark.parametrize("name, content, match", [
    ("nope.csv", None, "does not exist"),
    ("empty.csv", "", "is empty"),
    ("header.csv", "item_id,timestamp,target\n", "no data rows"),
])
def test_file_problems_are_named(tmp_path, name, content, match):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(TimeSeriesError, match=match):
        load_timeseries({"path": str(path)})
    with pytest.raises(ValueError):
        read_long_frame(path)


def test_missing_columns_are_named_with_what_was_found():
    frame = long_frame().rename(columns={"target": "value", "timestamp": "date"})
    with pytest.raises(TimeSeriesError, match=r"columns 'timestamp', 'target' missing .*found: item_id, date, value"):
        load(frame)


def test_non_numeric_target_and_bad_dates_are_named():
    frame = long_frame().astype({"target": object})
    frame.loc[3, "target"] = "n/a?"
    with pytest.raises(TimeSeriesError, match=r"target column 'target' .*not numeric.*'n/a\?' in series 'a'"):
        load(frame)
    frame = long_frame().astype({"timestamp": str})
    frame.loc[5, "timestamp"] = "someday"
    with pytest.raises(TimeSeriesError, match=r"timestamp column 'timestamp' .*not dates.*'someday'"):
        load(frame)
    frame = long_frame()
    frame.loc[2, "target"] = np.inf
    with pytest.raises(TimeSeriesError, match="infinite"):
        load(frame)


def test_duplicate_timestamps_are_named():
    frame = long_frame()
    frame = pd.concat([frame, frame.iloc[[45]]], ignore_index=True)
    with pytest.raises(TimeSeriesError, match=r"series 'b' .*duplicate timestamps.*2000-06-01"):
        load(frame)


def test_irregular_timestamps_name_the_series_and_the_gap():
    frame = long_frame()
    frame.loc[45, "timestamp"] = pd.Timestamp("2000-06-15")
    for freq in (None, "MS"):
        with pytest.raises(TimeSeriesError, match=r"series 'b' .*irregular timestamps: 2000-05-01 is followed by "
                                                  r"2000-06-15 \(45 days later\).*'MS' expects 2000-06-01"):
            load(frame, freq=freq)
    with pytest.raises(TimeSeriesError, match=r"series 'a' .*irregular.*not on frequency 'ME'"):
        load(long_frame(), freq="ME")
    mixed = pd.concat([long_frame(ids=("a",)), long_frame(ids=("b",), freq="D")])
    with pytest.raises(TimeSeriesError, match=r"different frequencies \('MS': 'a'; 'D': 'b'\)"):
        load(mixed)


def test_few_missing_timestamps_become_nan_with_a_warning_many_are_an_error():
    frame = long_frame().drop(index=[10, 11])  # 2 of 40 in series 'a' (5%)
    ds = load(frame)
    assert ds.freq == "MS" and len(ds.series["a"]) == 40
    assert np.isnan(ds.series["a"][10:12]).all() and not np.isnan(ds.series["b"]).any()
    assert any("series 'a': 2 missing timestamp(s) of 40 (2000-11-01, 2000-12-01)" in w for w in ds.warnings)
    with pytest.raises(TimeSeriesError, match=r"series 'a' .*missing 4 of 40 timestamps \(10%\).*First gap: "
                                              r"2000-10-01 is followed by 2001-03-01"):
        load(long_frame().drop(index=[10, 11, 12, 13]))
    assert len(load(long_frame().drop(index=[10, 11, 12, 13]), max_missing_fraction=0.2).series["a"]) == 40


def test_too_short_series_are_named_with_lengths(tmp_path):
    frame = pd.concat([long_frame(n=40, ids=("long",)), long_frame(n=20, ids=("s1",)),
                       long_frame(n=7, ids=("s2",))])
    ds = load(frame)
    check_lengths(ds, 7)
    with pytest.raises(TimeSeriesError, match=r"2 of 3 series .*shorter than the 36 steps.*'s1' \(20\), 's2' \(7\)"):
        check_lengths(ds, 36)
    frame.to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(TimeSeriesError, match=r"1 of 3 series .*shorter than the 8 steps.*'s2' \(7\)"):
        load_timeseries({"path": str(tmp_path / "short.csv"), "min_length": 8})
    with pytest.raises(TimeSeriesError, match=r"shorter than the 13 steps.*'s2' \(7\)"):  # default: horizon + 1
        load_timeseries({"path": str(tmp_path / "short.csv")})


def _gappy_csv(tmp_path) -> str:
    """Series 'a' (40 months of a straight line) with a 6-month gap inside and 5 missing months at its end;
    'b' has one missing month (not a gap)."""
    frame = long_frame()
    a = frame.item_id == "a"
    frame.loc[a & frame.index.isin(range(10, 16)), "target"] = np.nan
    frame.loc[a & frame.index.isin(range(35, 40)), "target"] = np.nan
    frame.loc[frame.index[50], "target"] = np.nan
    path = tmp_path / "gappy.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_nan_gaps_follow_dataset_nan_policy(tmp_path, caplog):
    path = _gappy_csv(tmp_path)
    base = {"path": path, "prediction_length": 4, "min_length": 5}  # a run of more than 3 NaN is a gap
    with pytest.raises(TimeSeriesError, match=r"series 'a' has a gap of 6 missing values in a row, 2000-11-01 to "
                                              r"2001-04-01 \(and 1 more gap\(s\)\); runs of more than 3 missing "
                                              r"values are gaps .*dataset.nan_policy=fill"):
        load_timeseries(base)  # refuse is the default
    with caplog.at_level("WARNING"):
        filled = load_timeseries({**base, "nan_policy": "fill"})
    want = np.linspace(1.0, 2.0, 40)[:35]  # a straight line: interpolation gives it back; the end is trimmed
    np.testing.assert_allclose(filled.series["a"], want, rtol=1e-12)
    assert filled.start["a"] == pd.Timestamp("2000-01-01") and np.isnan(filled.series["b"][10])
    assert [r.message for r in caplog.records if "nan_policy=fill" in r.message] == [
        "gappy: dataset.nan_policy=fill: filled or trimmed 2 gap(s) in 1 series (series 'a' has a gap of 6 missing "
        "values in a row, 2000-11-01 to 2001-04-01); runs of more than 3 missing values are gaps (dataset.max_nan_run)"]
    dropped = load_timeseries({**base, "nan_policy": "drop"})
    assert list(dropped.series) == ["b"] and any("left out 1 series with gaps" in w for w in dropped.warnings)
    assert list(load_timeseries({**base, "max_nan_run": 6}).series) == ["a", "b"]  # no run longer than 6
    with pytest.raises(TimeSeriesError, match="dataset.nan_policy must be one of refuse, fill, drop"):
        load_timeseries({**base, "nan_policy": "ignore"})
