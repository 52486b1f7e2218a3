"""``python -m efe.transfer run=<run dir> forecasters=[ets,theta,...]``: a frozen program, other forecasters.

The frozen normalization from a time-series run is applied unchanged (no re-evolution, no
tuning) in front of each forecaster on the run's held-out windows. Writes ``transfer.md``,
``transfer.json`` and ``transfer.csv`` into the run directory and prints the table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
from omegaconf import OmegaConf

from efe.cli.args import Command, run
from efe.core.config import CONF_DIR, ConfigError, plain_dict
from efe.datasets.ts_store import read_series
from efe.frozen.freeze import load_frozen
from efe.sandbox import Sandbox
from efe.core.specs import TimeSpec, load_spec
from efe.time.heldout import evaluate_program, render_table
from efe.rundir.paths import FROZEN
from evaluators.timeseries.forecasters import with_max_history

COMMAND = Command(
    "transfer", "run=<efe.time run dir> [forecasters=[seasonal_naive,ets,theta]] [+forecaster_params.<name>.<key>=...]",
    "Apply a time-series run's frozen program, unchanged, in front of other forecasters on its held-out windows.",
    required=("run",), text_keys=("run",))


def forecaster_config(name: str, overrides: dict) -> dict:
    path = CONF_DIR / "forecaster" / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (CONF_DIR / "forecaster").glob("*.yaml"))
        raise ConfigError(f"unknown forecaster '{name}'; known: {', '.join(known)}")
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    cfg.update(overrides.get(name, {}) or {})
    return cfg


def load_transfer(cfg) -> tuple[Path, TimeSpec, Any, Any, list[dict]]:
    """(run directory, its spec, frozen program, series, forecaster configs), or a ConfigError naming the problem."""
    run_dir = Path(str(cfg.run)).expanduser()
    spec_path = run_dir / "spec.json"
    if not spec_path.exists():
        raise ConfigError(f"'{run_dir}' is not an efe run directory (no spec.json)")
    spec = load_spec(spec_path)
    if not isinstance(spec, TimeSpec):
        raise ConfigError(f"'{run_dir}' is a {spec.setting} run; transfer applies to time-series runs")
    frozen = load_frozen(run_dir / FROZEN)
    series_path = run_dir / "data" / "series.parquet"
    if not series_path.exists():
        raise ConfigError(f"'{run_dir}' has no data/series.parquet (an incomplete run?)")
    series = read_series(series_path)
    overrides = plain_dict(cfg.get("forecaster_params")) or {}
    # the run's own forecaster exactly as the run had it (its overrides included) unless new params are given
    configs = [dict(spec.forecaster) if str(n) == spec.forecaster.get("name") and str(n) not in overrides
               else with_max_history(forecaster_config(str(n), overrides), spec.windows.max_history)
               for n in cfg.forecasters]
    return run_dir, spec, frozen, series, configs


def transfer(cfg) -> int:
    run_dir, spec, frozen, series, configs = load_transfer(cfg)
    limits = spec.sandbox
    rows = []
    with Sandbox(limits) as sandbox:
        for fc in configs:
            print(f"transfer: {fc['name']} ...", file=sys.stderr, flush=True)
            try:
                rows.append(evaluate_program(frozen.source, series, spec.prediction_length, spec.season,
                                             spec.heldout.windows, fc, spec.quantile_levels, limits,
                                             spec.seed, sandbox=sandbox, stride=spec.heldout.stride))
                rows[-1].pop("examples", None)
            except ValueError as exc:
                print(f"  skipped {fc['name']}: {exc}", file=sys.stderr)
    table = render_table(rows)
    header = (f"# Transfer of the frozen program from {spec.forecaster['name']} to other forecasters\n\n"
              f"Dataset {spec.dataset.name}; held-out windows: the last {spec.heldout.windows} of each "
              f"series; % = improvement over the same forecaster without the program (positive is better).\n\n")
    (run_dir / "transfer.md").write_text(header + table + "\n")
    (run_dir / "transfer.json").write_text(json.dumps(rows, indent=2))
    flat = [{"forecaster": r["forecaster"], **{f"{m}_{k}": r[k][m] for k in ("identity", "program", "improvement_pct")
                                                for m in ("mase", "wql", "mae")}, "windows": r["n_windows"]}
            for r in rows]
    pd.DataFrame(flat).to_csv(run_dir / "transfer.csv", index=False)
    print(table)
    print(f"\nwritten: {run_dir / 'transfer.md'}, transfer.json, transfer.csv", file=sys.stderr)
    return 0 if rows else 1


def main(argv: Sequence[str] | None = None) -> int:
    return run(COMMAND, transfer, argv)


if __name__ == "__main__":
    sys.exit(main())
