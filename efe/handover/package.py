"""Building a package from a run: a frozen tabular program, ready to hand over (``python -m efe.package``).

The package directory holds the standalone module (``efe.export``), a copy of the frozen program
(with its review log), a pytest suite with its sample rows (training rows, labels removed) and the
outputs expected for them, ``package.json`` (input and output schema, versions, hashes, test
parameters) and ``MODEL_CARD.md``. ``pytest <dir>`` needs only numpy, pandas and pytest.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from efe.core.config import plain_dict
from efe.core.contracts import TAB
from efe.datasets.split import read_train
from efe.frozen.export import DECODER_SOURCE, to_portable, write_module
from efe.frozen.freeze import FrozenProgramError, load_frozen
from efe.frozen.sandboxed import SandboxedProgram
from efe.handover.model_card import column_inputs, data_fingerprint, render_card
from efe.rundir.paths import FROZEN, frozen_dir_of
from efe.core.specs import load_spec

SUITE = Path(__file__).resolve().parent / "suite" / "test_feature_program.py"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _decoder() -> Any:
    namespace: dict[str, Any] = {"np": np, "pd": pd}
    exec(DECODER_SOURCE, namespace)  # noqa: S102 - efe's own decoder, the text every exported module holds
    return namespace["_decode"]


def _write_frame(path: Path, frame: pd.DataFrame) -> pd.DataFrame:
    """Store a table; returns it as the generated tests will read it back (e.g. a missing text value is None)."""
    text = json.dumps(to_portable(frame), allow_nan=True, separators=(",", ":"))
    path.write_text(text)
    return _decoder()(json.loads(text))


def _sample(run_dir: Path, manifest: dict, rows: int) -> pd.DataFrame:
    """Training rows spread over the table, without the label; never held-out rows."""
    spec = load_spec(run_dir / "spec.json")
    if not Path(spec.train_path).exists():
        raise FrozenProgramError(f"the run's training rows '{spec.train_path}' are missing: efe.package takes "
                                 "its sample rows from them")
    X, _ = read_train(spec.train_path, spec.target)
    names = [c["name"] for c in manifest.get("input_schema", [])]
    positions = np.unique(np.linspace(0, len(X) - 1, min(rows, len(X))).astype(int))
    return X.iloc[positions][names]


def _with_nan(sample: pd.DataFrame, column: str, rows: int) -> pd.DataFrame:
    X = sample.head(rows).copy()
    mask = np.ones(len(X), dtype=bool)
    mask[0] = False
    X[column] = X[column].where(mask)
    return X


def requirements() -> list[str]:
    """numpy and pandas from the packaged minor version up to the next major one, and pytest for the suite."""
    def pin(name: str, version: str) -> str:
        major, minor = (int(x) for x in version.split(".")[:2])
        return f"{name}>={major}.{minor},<{major + 1}"

    return [pin("numpy", np.__version__), pin("pandas", pd.__version__), "pytest"]


def build_package(run_dir: Path, out: Path, cfg: dict) -> Path:
    """Write the package for the run's frozen program into ``out``; returns ``out``."""
    frozen_dir = frozen_dir_of(run_dir)
    if frozen_dir == run_dir or not (run_dir / "spec.json").exists():
        raise FrozenProgramError(f"'{run_dir}' is not a run directory (efe.package needs the run's training rows "
                                 "for the sample and its report for the model card)")
    frozen = load_frozen(frozen_dir)
    m = frozen.manifest
    if m.get("setting") != TAB.setting:
        raise FrozenProgramError("efe.package packages tabular feature programs; a time-series program is fitted "
                                 "per series at forecast time (use efe.load_program)")
    out.mkdir(parents=True, exist_ok=True)
    module = str(cfg["module"])
    written = write_module(frozen_dir, out / f"{module}.py")

    # the frozen program itself, not the export, and in the sandbox: packaging runs nothing of it here
    program = SandboxedProgram(frozen.source, frozen.state)
    try:
        return _build(run_dir, out, cfg, frozen, program, written)
    finally:
        program.close()


def _build(run_dir: Path, out: Path, cfg: dict, frozen: Any, program: SandboxedProgram, written: list[Path]) -> Path:
    m = frozen.manifest
    frozen_dir = frozen.directory
    module = str(cfg["module"])
    apply = lambda X: program.transform(X.copy())
    sample = _write_frame(out / "sample_input.json", _sample(run_dir, m, int(cfg["sample_rows"])))
    expected = apply(sample)
    _write_frame(out / "expected_output.json", expected)

    probe_dir = out / "nan_probe"
    probe_dir.mkdir(exist_ok=True)
    probe_rows = min(len(sample), max(2, int(cfg["single_rows"])))
    nan_probe = []
    for i, column in enumerate(sample.columns):
        case = {"column": str(column), "input": f"nan_probe/input_{i}.json", "output": None, "error": None}
        X = _write_frame(out / case["input"], _with_nan(sample, column, probe_rows))
        try:
            _write_frame(out / f"nan_probe/output_{i}.json", apply(X))
            case["output"] = f"nan_probe/output_{i}.json"
        except Exception as exc:  # noqa: BLE001 - the behaviour is recorded, and pinned by the suite
            case["error"] = f"{type(exc).__name__}: {exc}"[:300]
        nan_probe.append(case)

    lat = cfg["latency"]
    rows = int(lat["batch_rows"])
    batch = pd.concat([sample] * (rows // len(sample) + 1), ignore_index=True).head(rows)
    started = time.perf_counter()
    apply(batch)
    measured = time.perf_counter() - started

    shutil.copytree(frozen_dir, out / FROZEN, dirs_exist_ok=True)
    for name in ("report.json", "report.md"):
        if (run_dir / name).exists():
            shutil.copyfile(run_dir / name, out / name)
    shutil.copyfile(SUITE, out / SUITE.name)
    (out / "pytest.ini").write_text("[pytest]\n# the package is its own test root\n")
    (out / "requirements.txt").write_text("".join(f"{r}\n" for r in requirements()))

    report = json.loads((run_dir / "report.json").read_text()) if (run_dir / "report.json").exists() else {}
    inputs = column_inputs(apply, sample, expected)
    fingerprint = data_fingerprint(run_dir)
    hashed = [*written, out / "sample_input.json", out / "expected_output.json", out / SUITE.name]
    config = {
        "format": 1, "module": module, "setting": "tab", "dataset": m.get("dataset"), "target": m.get("target"),
        "task": m.get("task", "binary"), "metric": m.get("metric", "ROC-AUC"),
        "program_sha256": m.get("files", {}).get("program.py"),
        "input_schema": m.get("input_schema", []),
        "output_schema": [{"name": str(c), "dtype": str(t)} for c, t in expected.dtypes.items()],
        "new_columns": m.get("new_columns", []), "dropped_columns": m.get("dropped_columns", []),
        "column_inputs": inputs,
        "versions": {**m.get("libraries", {}), "packaged_with": {"numpy": np.__version__, "pandas": pd.__version__}},
        "requires": requirements(), "data_fingerprint": fingerprint,
        "tolerance": plain_dict(cfg["tolerance"]),
        "sample": {"input": "sample_input.json", "output": "expected_output.json", "rows": len(sample),
                   "single_rows": int(cfg["single_rows"])},
        "nan_probe": nan_probe,
        "latency": {"batch_rows": rows, "measured_s": round(measured, 6),
                    "budget_s": round(max(float(lat["min_budget_s"]), float(lat["budget_factor"]) * measured), 6)},
        "sha256": {str(p.relative_to(out)): _sha256(p) for p in hashed},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    (out / "package.json").write_text(json.dumps(config, indent=2, default=str))
    (out / "MODEL_CARD.md").write_text(render_card(m, frozen.source, report, run_dir, config))
    return out
