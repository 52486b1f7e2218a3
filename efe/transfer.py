"""``python -m efe.transfer run=<run dir> forecasters=[ets,theta,...]``: a frozen program, other forecasters.

The frozen normalization from a time-series run is applied unchanged (no re-evolution, no
tuning) in front of each forecaster on the run's held-out windows. Writes ``transfer.md``,
``transfer.json`` and ``transfer.csv`` into the run directory and prints the table.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Sequence

import pandas as pd
from omegaconf import OmegaConf

from efe.core.config import CONF_DIR, ConfigError, compose, plain_dict
from efe.datasets.ts_store import read_series
from efe.frozen.freeze import FrozenProgramError, load_frozen
from efe.sandbox import Sandbox
from efe.core.specs import SpecError, TimeSpec, load_spec
from efe.time.heldout import evaluate_program, render_table
from evaluators.timeseries.forecasters import with_max_history

USAGE = "usage: python -m efe.transfer run=<run dir> [forecasters=[seasonal_naive,ets,theta]] [forecaster_params...]"


def forecaster_config(name: str, overrides: dict) -> dict:
    path = CONF_DIR / "forecaster" / f"{name}.yaml"
    if not path.exists():
        known = sorted(p.stem for p in (CONF_DIR / "forecaster").glob("*.yaml"))
        raise ConfigError(f"unknown forecaster '{name}'; known: {', '.join(known)}")
    cfg = OmegaConf.to_container(OmegaConf.load(path), resolve=True)
    cfg.update(overrides.get(name, {}) or {})
    return cfg


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if any(a in ("-h", "--help") for a in argv):
        print(USAGE)
        return 0
    try:
        cfg = compose("transfer", argv)
        if not cfg.get("run"):
            raise ConfigError("run=<run directory of an efe.time run> is required")
        run_dir = Path(str(cfg.run))
        spec_path = run_dir / "spec.json"
        if not spec_path.exists():
            raise ConfigError(f"'{run_dir}' is not an efe run directory (no spec.json)")
        spec = load_spec(spec_path)
        if not isinstance(spec, TimeSpec):
            raise ConfigError(f"'{run_dir}' is a {spec.setting} run; transfer applies to time-series runs")
        frozen = load_frozen(run_dir / "frozen")
        series = read_series(run_dir / "data" / "series.parquet")
        overrides = plain_dict(cfg.get("forecaster_params")) or {}
        max_history = spec.windows.max_history
        configs = [with_max_history(forecaster_config(str(n), overrides), max_history) for n in cfg.forecasters]
    except (ConfigError, SpecError, FrozenProgramError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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


if __name__ == "__main__":
    sys.exit(main())
