"""``tracking=mlflow`` the way MLflow users expect: MLflow's recommended local store by default, ``file:`` URIs,
a run logged live and nested under an active run, the frozen program as an MLflow model that
``mlflow.pyfunc.load_model`` runs (sandboxed) in a fresh process, and a dead tracking server that costs
one line, not the run."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import NO_PLOTS, ROOT, ratio_table, tab_program

pytest.importorskip("mlflow")

TIME_SMALL = ["dataset=synthetic_exp", "dataset.n_series=4", "dataset.length=80", "dataset.prediction_length=8",
              "windows.n_rotations=1", "forecaster=seasonal_naive", "evolution.iterations=2", "selection.top_k=0"]


def _env(**extra: str) -> dict:
    env = dict(os.environ, HF_HUB_OFFLINE="1", **extra)
    for key in ("EFE_LLM_API_BASE", "MLFLOW_TRACKING_URI", "MLFLOW_RUN_ID", "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
                "MLFLOW_HTTP_REQUEST_TIMEOUT"):
        env.pop(key, None)
    return env


def efe_cli(module: str, *args: str, timeout: int = 900) -> subprocess.CompletedProcess:
    runs = (NO_PLOTS,) if module in ("efe.tab", "efe.time") else ()
    return subprocess.run([sys.executable, "-m", module, *runs, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, env=_env())


def _ratio_run_args(tmp: Path) -> list[str]:
    table = ratio_table(300, seed=2)
    table.to_csv(tmp / "ratio.csv", index=False)
    bodies = ["out['log_ratio'] = np.log(X['a'] / X['b'])", "out['ratio'] = X['a'] / X['b']",
              "out['diff'] = X['a'] - X['b']"]
    responses = [f"```python\n{tab_program('out = X.copy()' + chr(10) + body + chr(10) + 'return out')}\n```"
                 for body in bodies]
    (tmp / "responses.json").write_text(json.dumps(responses))
    return ["dataset=csv", f"dataset.path={tmp / 'ratio.csv'}", "dataset.target=label", "llm=replay",
            f"llm.path={tmp / 'responses.json'}", "scorer=tree", "evolution.iterations=3", "selection.top_k=1",
            "selection.require_gain=false", f"runs_root={tmp / 'runs'}", f"llm.cache_dir={tmp / 'cache'}",
            "report.models=[tree]"]


@pytest.fixture(scope="module")
def sqlite_run(tmp_path_factory) -> Path:
    """A short replayed tabular run with ``tracking=mlflow`` and no URI: MLflow's recommended sqlite store."""
    tmp = tmp_path_factory.mktemp("mlflow_tab")
    proc = efe_cli("efe.tab", *_ratio_run_args(tmp), "tracking=mlflow")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return next((tmp / "runs" / "tab").glob("*/*"))


def _client(uri: str):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def test_default_store_is_sqlite_under_runs_root_and_the_run_is_logged_live(sqlite_run):
    runs_root = sqlite_run.parents[2]
    db = runs_root / "mlflow.db"
    assert db.exists(), "tracking=mlflow without a URI writes MLflow's recommended local store under runs_root"
    assert not (ROOT / "mlruns").exists() or not any((ROOT / "mlruns").glob(f"*/*/tags/efe.run_dir"))
    client = _client(f"sqlite:///{db}")
    experiment = client.get_experiment_by_name("efe")
    (run,) = client.search_runs([experiment.experiment_id])
    assert run.info.status == "FINISHED"
    assert run.data.params["evolution.iterations"] == "3" and run.data.params["scorer.name"] == "tree"
    tags = run.data.tags
    assert tags["efe.setting"] == "tab" and tags["efe.version"] and tags["mlflow.source.name"] == "python -m efe.tab"
    assert re.fullmatch(r"[0-9a-f]{64}", tags["efe.dataset.fingerprint"])
    assert run.inputs.dataset_inputs and run.inputs.dataset_inputs[0].dataset.name == "ratio"
    # live: every candidate's fitness was logged while the run was open, before the report was written
    curve = client.get_metric_history(run.info.run_id, "fitness")
    assert len(curve) >= 3
    report_ms = 1000 * (sqlite_run / "report.json").stat().st_mtime
    assert all(run.info.start_time <= m.timestamp < report_ms for m in curve)
    assert run.info.end_time >= report_ms - 1000
    # artefacts live next to the database, not in the working directory
    assert Path(client.get_experiment(experiment.experiment_id).artifact_location.replace("file://", "")) \
        == runs_root / "mlartifacts"


def test_the_logged_model_transforms_a_frame_in_a_fresh_process_sandboxed(sqlite_run, tmp_path):
    record = json.loads((sqlite_run / "tracking.json").read_text())
    assert record["model_uri"].startswith("models:/")
    frame = ratio_table(20, seed=9).drop(columns="label")
    frame.to_parquet(tmp_path / "in.parquet")
    script = textwrap.dedent(f"""
        import sys, mlflow, pandas as pd
        mlflow.set_tracking_uri({record['uri']!r})
        model = mlflow.pyfunc.load_model({record['model_uri']!r})
        out = model.predict(pd.read_parquet({str(tmp_path / 'in.parquet')!r}))
        out.to_parquet({str(tmp_path / 'out.parquet')!r})
        print("INPUT", [c.name for c in model.metadata.get_input_schema().inputs])
        print("OUTPUT", [c.name for c in model.metadata.get_output_schema().inputs])
        print("PROGRAM", type(model.unwrap_python_model().program.program_).__name__)
        sk = mlflow.sklearn.load_model({record['model_uri']!r})
        sk.transform(pd.read_parquet({str(tmp_path / 'in.parquet')!r})).to_parquet({str(tmp_path / 'sk.parquet')!r})
        print("SKLEARN", type(sk).__name__, "sandboxed" if hasattr(sk._program().program_, "sandbox") else "in-process")
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600, env=_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    import efe

    expected = efe.load_program(sqlite_run, sandboxed=True).transform(frame)
    assert set(expected.columns) - set(frame.columns), "the replayed run freezes a program that adds a column"
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "out.parquet"), expected)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "sk.parquet"), expected)
    assert f"INPUT {['a', 'b', 'n1', 'n2']}" in proc.stdout
    assert f"OUTPUT {list(expected.columns)}" in proc.stdout
    assert "PROGRAM SandboxedProgram" in proc.stdout, proc.stdout
    assert "SKLEARN PortableFrozenProgram sandboxed" in proc.stdout, proc.stdout


def test_a_file_uri_works_and_the_run_nests_under_an_active_run(tmp_path, monkeypatch):
    """A time-series run started inside ``mlflow.start_run()`` with ``tracking.uri=file:<dir>``."""
    store = (tmp_path / "mlruns").as_uri()   # file:///...; efe is given the short form file:/...
    driver = textwrap.dedent(f"""
        import os, sys, mlflow
        mlflow.set_tracking_uri({store!r})
        mlflow.set_experiment("pipeline")
        with mlflow.start_run(run_name="parent") as parent:
            print("PARENT", parent.info.run_id, flush=True)
            os.environ.pop("MLFLOW_ALLOW_FILE_STORE")  # the parent's store is open; efe opens its own
            sys.argv = ["efe.time", *{[*TIME_SMALL, f"runs_root={tmp_path / 'runs'}",
                                       f"llm.cache_dir={tmp_path / 'cache'}", "tracking=mlflow",
                                       f"tracking.uri=file:{tmp_path / 'mlruns'}"]!r}]
            from efe.time.__main__ import main
            try:
                main()
            except SystemExit as exc:
                print("EXIT", exc.code, flush=True)
    """)
    proc = subprocess.run([sys.executable, "-c", driver], cwd=ROOT, capture_output=True, text=True, timeout=900,
                          env=_env(MLFLOW_ALLOW_FILE_STORE="true"))
    assert proc.returncode == 0 and "EXIT" not in proc.stdout, proc.stderr[-3000:]
    parent_id = re.search(r"PARENT (\w+)", proc.stdout).group(1)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    client = _client(store)
    parent = client.get_run(parent_id)
    (child,) = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert child.info.status == "FINISHED" and child.data.tags["efe.setting"] == "time"
    assert any(k.startswith("heldout_seasonal_naive_") for k in child.data.metrics)
    # the time-series model: each series normalized on its own history
    import mlflow

    # set_tracking_uri also sets MLFLOW_TRACKING_URI in os.environ, which later tests' subprocesses
    # (the README's commands) would inherit: monkeypatch puts the environment back
    monkeypatch.setenv("MLFLOW_TRACKING_URI", str(store))
    previous = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(store)
    try:
        model = mlflow.pyfunc.load_model(child.data.tags["efe.model_uri"])
    finally:
        mlflow.set_tracking_uri(previous)
    frame = pd.DataFrame({"unique_id": ["s1"] * 30 + ["s2"] * 30,
                          "y": np.r_[np.linspace(1, 3, 30), np.linspace(10, 40, 30)]})
    out = model.predict(frame)
    assert list(out.columns) == ["unique_id", "y", "z"] and out["z"].notna().all()


class SilentServer:
    """A TCP port that accepts connections and never answers (a hung tracking server)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.connections: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)

    def close(self) -> None:
        for conn in self.connections:
            conn.close()
        self.sock.close()


@pytest.mark.parametrize("kind", ["hung", "malformed"])
def test_a_dead_or_malformed_tracking_uri_costs_one_line_and_the_run_is_kept(kind, tmp_path):
    server = SilentServer() if kind == "hung" else None
    uri = f"http://127.0.0.1:{server.port}" if server else "bogus://x"
    try:
        proc = efe_cli("efe.tab", *_ratio_run_args(tmp_path), "evolution.iterations=2", "tracking=mlflow",
                       f"tracking.uri={uri}", "tracking.timeout=2", timeout=600)
    finally:
        if server:
            server.close()
    assert proc.returncode == 0, proc.stderr[-3000:]
    run_dir = next((tmp_path / "runs" / "tab").glob("*/*"))
    assert (run_dir / "frozen" / "manifest.json").exists() and (run_dir / "report.json").exists()
    mentions = [line for line in proc.stderr.splitlines() if "mlflow" in line.lower() or "Traceback" in line]
    assert len(mentions) == 1, mentions
    assert uri in mentions[0] and "untracked" in mentions[0]
    spent = float(re.search(r"after (\d+)s", mentions[0]).group(1))
    assert spent <= 2 + 1
    if server:
        assert len(server.connections) == 1, "one request, no retries"
