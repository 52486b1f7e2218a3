"""From a run to production: efe.package (its suite in a clean venv), efe.review, require_review, MLflow."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import numpy as np
import pytest

import efe
from efe.frozen.freeze import FrozenProgramError
from efe.package import main as package_main
from efe.handover.package import requirements
from efe.review import main as review
from efe.frozen.review_log import ReviewError
from tests.conftest import NO_PLOTS, ROOT, ratio_table, tab_program


def _env() -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    env.pop("EFE_LLM_API_BASE", None)
    return env


def efe_cli(module: str, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    runs = (NO_PLOTS,) if module in ("efe.tab", "efe.time") else ()
    return subprocess.run([sys.executable, "-m", module, *runs, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=_env())


@pytest.fixture(scope="module")
def tab_run(tmp_path_factory) -> Path:
    """A short replayed run, tracked to a local MLflow store."""
    tmp = tmp_path_factory.mktemp("pkg_run")
    table = ratio_table(400, seed=2)
    table["group"] = np.where(table["n1"] > 0, "up", "down")
    table.to_csv(tmp / "ratio.csv", index=False)
    # scripted proposals (six distinct programs, the ratio among them) so the frozen program is never the
    # identity, whatever path the offline proposer's search would take
    bodies = ["out['log_ratio'] = np.log(X['a'] / X['b'])", "out['ratio'] = X['a'] / X['b']",
              "out['ratio'] = X['a'] / X['b']\nout['log_a'] = np.log(X['a'])", "out['diff'] = X['a'] - X['b']",
              "out['inv_ratio'] = X['b'] / X['a']", "out['log_b'] = np.log(X['b'])"]
    responses = [f"```python\n{tab_program('out = X.copy()' + chr(10) + body + chr(10) + 'return out')}\n```"
                 for body in bodies]
    (tmp / "responses.json").write_text(json.dumps(responses))
    proc = efe_cli("efe.tab", "dataset=csv", f"dataset.path={tmp / 'ratio.csv'}", "dataset.target=label",
                   "llm=replay", f"llm.path={tmp / 'responses.json'}",
                   "scorer=tree", "evolution.iterations=6", "selection.top_k=2", "selection.require_gain=false",
                   f"runs_root={tmp / 'runs'}",
                   f"llm.cache_dir={tmp / 'cache'}", "report.models=[tree]", "tracking=mlflow",
                   f"tracking.uri={tmp / 'mlruns'}", "tracking.experiment=efe-test")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next((tmp / "runs" / "tab").glob("*/*"))


@pytest.fixture(scope="module")
def package(tab_run, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("pkg") / "ratio_features"
    proc = efe_cli("efe.package", f"run={tab_run}", f"out={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="session")
def clean_python(tmp_path_factory) -> Path:
    """A throw-away virtual environment with numpy, pandas and pytest only (pip reads the local mirrors)."""
    root = tmp_path_factory.getbasetemp() / "clean-venv"
    python = root / "bin" / "python"
    if not python.exists():
        venv.create(root, with_pip=False, clear=True)  # this interpreter's pip installs into it
        # the same pins a package writes into its requirements.txt
        proc = subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
                               "--disable-pip-version-check", *requirements()], capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
    return python


def run_suite(python: Path, package: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    return subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package)],
                          capture_output=True, text=True, timeout=300, cwd=package.parent, env=env)


def test_package_contents_and_model_card(package, tab_run):
    names = {p.name for p in package.iterdir()}
    assert {"feature_program.py", "package.json", "requirements.txt", "MODEL_CARD.md", "test_feature_program.py",
            "sample_input.json", "expected_output.json", "frozen", "report.json"} <= names
    config = json.loads((package / "package.json").read_text())
    report = json.loads((tab_run / "report.json").read_text())
    assert config["target"] == "label" and "label" not in json.dumps(config["input_schema"])
    assert [c["name"] for c in config["input_schema"]] == ["a", "b", "n1", "n2", "group"]
    assert {"python", "numpy", "pandas"} <= set(config["versions"])
    card = (package / "MODEL_CARD.md").read_text()
    for new in report["winner"]["new_columns"]:
        assert f"**{new}**" in card and set(config["column_inputs"][new]) <= {"a", "b", "n1", "n2", "group"}
    held = report["heldout"][0]
    assert f"{held['auc_efe']:.4f}" in card and f"{held['delta']:+.4f}" in card
    has_interval = bool((report.get("estimates") or {}).get("heldout"))
    assert ("not reported" in card) != has_interval
    assert config["data_fingerprint"]["sha256"] in card and "## How it was found" in card
    assert "## Known limits" in card and "tree" in card


def test_generated_suite_passes_in_a_clean_venv_and_fails_when_the_program_is_edited(package, clean_python,
                                                                                       tmp_path):
    probe = subprocess.run([str(clean_python), "-c", "import sklearn"], capture_output=True, text=True)
    assert probe.returncode != 0  # only numpy, pandas and pytest there
    proc = run_suite(clean_python, package)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    passed = int(proc.stdout.strip().splitlines()[-1].split(" passed")[0].split()[-1])
    assert passed >= 10, proc.stdout[-500:]

    edited = tmp_path / "edited"
    shutil.copytree(package, edited)
    module = edited / "feature_program.py"
    module.write_text(module.read_text().replace("def transform(X: pd.DataFrame) -> pd.DataFrame:",
                                                 "def transform(X: pd.DataFrame) -> pd.DataFrame:\n    X = X * 1",
                                                 1))
    proc = run_suite(clean_python, edited)
    assert proc.returncode != 0 and "feature_program.py was changed after packaging" in proc.stdout

    program = edited / "frozen" / "program.py"
    program.write_text(program.read_text() + "\n# edited\n")
    with pytest.raises(FrozenProgramError, match="does not match its hash"):
        efe.load_program(edited)


def test_the_generated_suite_checks_hashes_before_it_imports_the_module(package, clean_python, tmp_path):
    """An edited module is never imported: its module-level code would run at collection, before any test."""
    edited = tmp_path / "edited"
    shutil.copytree(package, edited)
    marker = tmp_path / "ran_at_import"
    module = edited / "feature_program.py"
    module.write_text(module.read_text().replace("import json\n", f"import json\nopen({str(marker)!r}, 'w')\n", 1))
    proc = run_suite(clean_python, edited)
    assert proc.returncode != 0
    assert "feature_program.py was changed after packaging" in proc.stdout, proc.stdout[-3000:]
    assert not marker.exists(), "the suite imported the edited module before checking its hash"


def test_package_runs_the_frozen_program_in_the_sandbox(tab_run, tmp_path):
    """A program edited with its hash recomputed: efe.package runs nothing of it in its own process."""
    run = tmp_path / "run"
    shutil.copytree(tab_run, run)
    marker = tmp_path / "owned"
    program = run / "frozen" / "program.py"
    source = program.read_text().replace(
        "import pandas as pd", f"import pandas as pd\ngetattr(getattr(pd.io.common, 'o' + 's'), 'sys' + 'tem')"
                               f"('touch {marker}')", 1)
    assert str(marker) in source
    program.write_text(source)
    manifest_path = run / "frozen" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["program.py"] = hashlib.sha256(source.encode()).hexdigest()
    manifest_path.write_text(json.dumps(manifest, indent=2))
    proc = efe_cli("efe.package", f"run={run}", f"out={tmp_path / 'pkg'}")
    assert not marker.exists(), "efe.package ran the program's code in its own process"
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "forbidden" in proc.stderr, proc.stderr[-3000:]


def test_review_round_trip_and_require_review(tab_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tab_run, run)
    assert efe.load_program(run).transform is not None  # default: no review needed
    with pytest.raises(ReviewError, match="has not been reviewed"):
        efe.load_program(run, require_review=True)

    proc = efe_cli("efe.review", str(run), "decision=approve", "reviewer=Ada", "note=ratio makes sense")
    assert proc.returncode == 0, proc.stderr
    assert "Changes against the identity" in proc.stdout and "+++ frozen program" in proc.stdout
    assert "# Model card" in proc.stdout and "review status: unreviewed" in proc.stdout
    assert "recorded: approve by Ada" in proc.stdout
    efe.load_program(run, require_review=True)

    assert review([str(run), "decision=reject", "reviewer=Bob", "note=drop it", "show=false"]) == 0
    with pytest.raises(ReviewError, match="rejected by Bob.*drop it"):
        efe.load_program(run, require_review=True)
    assert review([str(run), "decision=approve", "show=false"]) == 2  # no reviewer name
    assert review([str(run), "decision=maybe", "reviewer=Bob", "show=false"]) == 2

    assert review([str(run), "decision=approve", "reviewer=Carol", "show=false"]) == 0
    efe.load_program(run, require_review=True)
    manifest_path = run / "frozen" / "manifest.json"  # an edit that also updates the manifest's hash
    program = run / "frozen" / "program.py"
    program.write_text(program.read_text() + "\n# tweaked after approval\n")
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["program.py"] = hashlib.sha256(program.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest, indent=2))
    with pytest.raises(ReviewError, match="changed after it was approved by Carol"):
        efe.load_program(run, require_review=True)
    assert review([str(run), "decision=approve", "reviewer=Dan", "show=false"]) == 0  # the new version
    efe.load_program(run, require_review=True)
    program.write_text(program.read_text() + "# not in the manifest\n")
    assert review([str(run), "decision=approve", "reviewer=Dan", "show=false"]) == 2
    program.write_text(program.read_text().replace("# not in the manifest\n", ""))

    log = run / "frozen" / "review_log.jsonl"
    lines = log.read_text().splitlines()
    log.write_text("\n".join([lines[0].replace("ratio makes sense", "anything goes"), *lines[1:]]) + "\n")
    with pytest.raises(ReviewError, match="broken at entry 1"):
        efe.load_program(run, require_review=True)


def test_a_package_carries_its_own_review(package, tmp_path):
    copy = tmp_path / "pkg"
    shutil.copytree(package, copy)
    with pytest.raises(ReviewError, match="has not been reviewed"):
        efe.load_program(copy, require_review=True)
    proc = efe_cli("efe.review", str(copy), "decision=approve", "reviewer=Ada")
    assert proc.returncode == 0, proc.stderr
    assert "## What it adds" in proc.stdout  # the package's MODEL_CARD.md
    assert (copy / "frozen" / "review_log.jsonl").exists()
    efe.load_program(copy, require_review=True)


def test_tracking_mlflow_finds_the_run_metrics_and_package(tab_run):
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import (
        MlflowClient,  # heavy optional dependency: only these tests load it
    )

    client = MlflowClient(tracking_uri=(tab_run.parents[3] / "mlruns").as_uri())
    experiment = client.get_experiment_by_name("efe-test")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED" and run.data.tags["efe.setting"] == "tab"
    assert run.data.params["evolution.iterations"] == "6" and run.data.params["scorer.name"] == "tree"
    report = json.loads((tab_run / "report.json").read_text())
    assert run.data.metrics["heldout_tree_auc_efe"] == pytest.approx(report["heldout"][0]["auc_efe"])
    assert run.data.metrics["llm_calls"] == report["search"]["llm_calls"]
    curve = client.get_metric_history(run.info.run_id, "best_fitness")
    assert len(curve) >= 6 and all(a.value <= b.value for a, b in zip(curve, curve[1:]))
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "package")}
    assert {"package/feature_program.py", "package/MODEL_CARD.md", "package/test_feature_program.py"} <= artifacts
    assert "report.json" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_tracking_mlflow_for_a_time_series_run(tmp_path):
    proc = efe_cli("efe.time", "dataset=synthetic_exp", "dataset.n_series=4", "dataset.length=80",
                   "dataset.prediction_length=8", "windows.n_rotations=1", "forecaster=seasonal_naive",
                   "evolution.iterations=2", "selection.top_k=0", f"runs_root={tmp_path / 'runs'}",
                   f"llm.cache_dir={tmp_path / 'cache'}", "tracking=mlflow", f"tracking.uri={tmp_path / 'mlruns'}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    from mlflow.tracking import (
        MlflowClient,  # heavy optional dependency: only these tests load it
    )

    client = MlflowClient(tracking_uri=(tmp_path / "mlruns").as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("efe").experiment_id])
    assert any(k.startswith("heldout_seasonal_naive_") for k in run.data.metrics)
    assert "frozen/program.py" in {a.path for a in client.list_artifacts(run.info.run_id, "frozen")}


def test_package_and_review_reject_bad_input(tmp_path, capsys):
    assert package_main([f"run={tmp_path}", f"out={tmp_path / 'out'}"]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    assert review([str(tmp_path), "decision=approve", "reviewer=Ada"]) == 2
    assert "no manifest.json" in capsys.readouterr().err
    assert package_main(["out=x"]) == 2 and "usage:" in capsys.readouterr().err


def test_a_wrongly_typed_review_log_line_is_one_clear_error_naming_the_file_and_line(tab_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tab_run, run)
    assert review([str(run), "decision=approve", "reviewer=Ada", "show=false"]) == 0
    log = run / "frozen" / "review_log.jsonl"
    good = log.read_text()
    where = re.escape(f"review log '{log}' line 2")
    for bad in ('"approve"', "[1, 2]"):
        log.write_text(good + bad + "\n")
        with pytest.raises(ReviewError, match=f"{where} is not a JSON object"):
            efe.load_program(run, require_review=True)
    # a line whose hashes chain correctly but whose fields are wrongly typed is not skipped either
    last = json.loads(good.splitlines()[-1])
    forged = {"seq": 2, "prev": last["hash"], "decision": "approve", "reviewer": ["Mallory"], "time": 5}
    forged["hash"] = hashlib.sha256(json.dumps(forged, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    log.write_text(good + json.dumps(forged) + "\n")
    with pytest.raises(ReviewError, match=f"{where} has no text 'reviewer'"):
        efe.load_program(run, require_review=True)
    proc = efe_cli("efe.review", str(run), "show=false")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert [line for line in proc.stderr.splitlines() if line.strip()] == [
        f"error: review log '{log}' line 2 has no text 'reviewer' (the log was edited by hand or written by "
        "another program)"]
