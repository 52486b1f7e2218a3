"""Experiment tracking (``tracking=mlflow``): a finished run's parameters, fitness curve, cost,
held-out result and frozen package, logged to MLflow. ``tracking=none`` (the default) does nothing.

Everything is read from the run directory after the run, so tracking cannot change a result.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from efe.core.config import CONF_DIR, ConfigError, plain_dict
from efe.frozen.freeze import FrozenProgramError
from efe.handover.package import build_package
from efe.rundir.records import read_lineage

log = logging.getLogger(__name__)


def track_run(cfg: DictConfig, run_dir: Path, setting: str) -> str | None:
    """Log the finished run to the configured tracker; the tracker's run id, or None when off."""
    tracking = plain_dict(cfg.get("tracking")) or {}
    backend = str(tracking.get("backend") or "none")
    if backend == "none":
        return None
    if backend != "mlflow":
        raise ConfigError(f"unknown tracking backend {backend!r}; known: none, mlflow")
    return log_to_mlflow(run_dir, setting, tracking)


def _flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(tree, dict):
        out: dict[str, str] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): json.dumps(tree) if isinstance(tree, (list, tuple)) else str(tree)}


def fitness_curve(run_dir: Path) -> list[tuple[str, float, int, int]]:
    """(metric, value, step, time in ms) for every scored candidate and the running best, by iteration."""
    points, best = [], float("-inf")
    entries = sorted((e for e in read_lineage(run_dir / "lineage.jsonl") if e.fitness is not None),
                     key=lambda e: (e.iteration or 0, e.time or 0.0))
    for e in entries:
        value, step = e.score, e.iteration or 0
        ms = int(1000 * float(e.time or 0))
        best = max(best, value)
        points += [("fitness", value, step, ms), ("best_fitness", best, step, ms)]
    return points


def summary_metrics(report: dict) -> dict[str, float]:
    """Cost, winner and held-out figures from report.json (every number found, with its interval if any)."""
    out: dict[str, float] = {}
    search = report.get("search", {})
    for key in ("llm_calls", "llm_cached", "llm_cost_usd", "wall_s", "candidates", "valid", "iterations_done"):
        if isinstance(search.get(key), (int, float)):
            out[key] = float(search[key])
    for key in ("fitness", "delta_auc", "mase_ratio"):
        if isinstance(report.get("winner", {}).get(key), (int, float)):
            out[f"winner_{key}"] = float(report["winner"][key])
    for i, row in enumerate(report.get("heldout", [])):
        name = str(row.get("model") or row.get("forecaster") or i)
        for key, value in _flatten(row).items():
            try:
                out[f"heldout_{name}_{key.replace('.', '_')}"] = float(value)
            except ValueError:
                continue  # text (names, notes) is not a metric
    for row in (report.get("estimates") or {}).get("heldout", []) or []:
        for key in ("low", "high", "se"):
            if isinstance(row.get(key), (int, float)):
                out[f"heldout_{row.get('model')}_delta_{key}"] = float(row[key])
    return {k.replace(" ", "_"): v for k, v in out.items() if v == v}  # NaN is not a measurement


def _tracking_uri(uri: str) -> str:
    if "://" in uri or uri.startswith("file:"):
        return uri
    # A local directory: MLflow 3 keeps its file store only behind this opt-in (it suggests a database
    # instead, which mlflow-skinny cannot write); a local directory is what tracking.uri asks for.
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return Path(uri).resolve().as_uri()


def log_to_mlflow(run_dir: Path, setting: str, tracking: dict) -> str:
    try:
        # lazy: mlflow is a heavy optional dependency (efe[mlflow]), imported only when tracking=mlflow
        from mlflow.entities import Metric, Param
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ConfigError("tracking=mlflow needs MLflow: pip install 'efe[mlflow]' (the run itself is complete in "
                          f"{run_dir})") from None
    client = MlflowClient(tracking_uri=_tracking_uri(str(tracking.get("uri") or "./mlruns")))
    name = str(tracking.get("experiment") or "efe")
    experiment = client.get_experiment_by_name(name)
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(name)
    report = json.loads((run_dir / "report.json").read_text()) if (run_dir / "report.json").exists() else {}
    dataset = (report.get("dataset") or {}).get("name", "dataset")
    run = client.create_run(experiment_id, run_name=f"{setting}/{dataset}/{run_dir.name}",
                            tags={"efe.setting": setting, "efe.run_dir": str(run_dir.resolve())})
    run_id = run.info.run_id
    try:
        config = OmegaConf.to_container(OmegaConf.load(run_dir / "config.yaml"), resolve=True)
        params = [Param(k[:250], v[:6000]) for k, v in _flatten(config).items()]
        for i in range(0, len(params), 100):
            client.log_batch(run_id, params=params[i:i + 100])
        now = int(1000 * (run_dir / "report.json").stat().st_mtime) if report else 0
        metrics = [Metric(k, v, now, 0) for k, v in summary_metrics(report).items()]
        metrics += [Metric(k, v, ms, step) for k, v, step, ms in fitness_curve(run_dir)]
        for i in range(0, len(metrics), 500):
            client.log_batch(run_id, metrics=metrics[i:i + 500])
        for artefact in ("report.json", "report.md", "config.yaml"):
            if (run_dir / artefact).exists():
                client.log_artifact(run_id, str(run_dir / artefact))
        _log_program(client, run_id, run_dir, setting)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.set_terminated(run_id)
    log.info("logged run %s to MLflow experiment %s", run_id, name)
    return run_id


def _log_program(client: Any, run_id: str, run_dir: Path, setting: str) -> None:
    """The frozen package for tabular runs (the frozen directory when it cannot be packaged), else frozen/."""
    if setting == "tab":
        with tempfile.TemporaryDirectory() as tmp:
            try:
                defaults = plain_dict(OmegaConf.load(CONF_DIR / "package.yaml"))  # inside a Hydra app: no compose
                out = build_package(run_dir, Path(tmp) / "package", defaults)
            except (FrozenProgramError, ValueError, TypeError) as exc:
                log.warning("could not package the frozen program for MLflow (%s); logging frozen/ instead", exc)
            else:
                client.log_artifacts(run_id, str(out), "package")
                return
    client.log_artifacts(run_id, str(run_dir / "frozen"), "frozen")
