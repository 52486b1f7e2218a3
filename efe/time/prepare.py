"""From a resolved config to what the evaluator needs: the series on disk, the dataset context and a run spec."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from omegaconf import DictConfig

from efe.core.config import plain_dict, required
from efe.datasets.timeseries import check_lengths, load_timeseries
from efe.datasets.ts_store import write_series
from efe.core.resources import seed_program
from efe.core.specs import TimeSpec, build
from efe.time.context import build_context
from evaluators.timeseries.forecasters import make_forecaster, with_max_history
from evaluators.timeseries.windows import span, stride_steps

SEED_PROGRAM = seed_program("time")


def prepare_time_run(cfg: DictConfig, run_dir: Path) -> tuple[TimeSpec, dict]:
    ds = load_timeseries(plain_dict(cfg.dataset))
    h, season = int(ds.prediction_length), int(ds.season)
    n_test, n_val = int(cfg.heldout.windows), int(cfg.windows.n_windows)
    sel_cfg = required(cfg, "selection")
    n_sel = int(sel_cfg["windows"] or 0)
    n_claim = int(sel_cfg["claim_windows"] or 0) if n_sel else 0
    stride = stride_steps(required(cfg, "windows.stride"), h)
    test_stride = stride_steps(required(cfg, "heldout.stride"), h)
    test_span, sel_span = span(h, n_test, test_stride), span(h, n_sel, stride) + span(h, n_claim, stride)
    min_history = int(cfg.windows.min_history_horizons) * h
    check_lengths(ds, test_span + sel_span + h + min_history)
    max_history = required(cfg, "windows.max_history") or max(int(cfg.windows.max_history_seasons) * season,
                                                        int(cfg.windows.max_history_horizons) * h)
    train = {k: v[: len(v) - test_span] for k, v in ds.series.items()}
    (run_dir / "data").mkdir(parents=True, exist_ok=True)
    write_series(run_dir / "data" / "train.parquet", train)
    write_series(run_dir / "data" / "series.parquet", ds.series)
    context = build_context(ds.name, ds.description, train, ds.freq, h, ds.season)
    (run_dir / "context.json").write_text(json.dumps(context, indent=2))
    forecaster = with_max_history(plain_dict(cfg.forecaster), int(max_history))
    make_forecaster(forecaster)  # a forecaster that cannot be built is one line now, not after the search
    spec = build(TimeSpec, {
        "setting": "time", "run_dir": str(run_dir.resolve()), "seed": int(cfg.seed), "train_path": str((run_dir / "data" / "train.parquet").resolve()),
        "dataset": {"name": ds.name, "description": ds.description, "warnings": ds.warnings,
                    "n_series": len(ds.series)},
        "freq": ds.freq, "prediction_length": h, "season": int(ds.season),
        "quantile_levels": list(cfg.quantile_levels),
        "forecaster": forecaster,
        "windows": {"n_windows": n_val, "stride": stride, "min_history": min_history, "end_offset": sel_span,
                    "max_history": int(max_history), "max_total": int(required(cfg, "windows.max_total") or 0),
                    "n_rotations": int(cfg.windows.n_rotations),
                    "min_instances_per_rotation": int(cfg.windows.min_instances_per_rotation)},
        "selection": {"windows": n_sel, "claim_windows": n_claim, "top_k": int(sel_cfg["top_k"] or 0),
                      "require_gain": bool(sel_cfg["require_gain"]),
                      "confirm": bool(sel_cfg["confirm"]),
                      "min_gain": float(sel_cfg["min_gain"] or 0.0),
                      "max_series_loss": (None if sel_cfg["max_series_loss"] is None
                                          else float(sel_cfg["max_series_loss"])),
                      "interval_z": float(sel_cfg["interval_z"]),
                      "min_windows_per_series": float(sel_cfg["min_windows_per_series"] or 0.0),
                      "min_windows_total": float(sel_cfg["min_windows_total"] or 0.0)},
        "series_loss": required(cfg, "series_loss"),
        "heldout": {"windows": n_test, "stride": test_stride},
        "gate": required(cfg, "gate"), "fitness": required(cfg, "fitness"), "sandbox": required(cfg, "sandbox"),
        "search": None,
    })
    shutil.copyfile(SEED_PROGRAM, run_dir / "seed_program.py")
    return spec, context
