"""Experiment tracking (``tracking=mlflow``): the run logged live to MLflow. ``tracking=none`` (the default)
does nothing.

The MLflow run opens when the efe run starts (parameters, source, git commit, dataset fingerprint and
efe version as tags), takes every scored candidate's fitness and the running best as they come, and
at the end the cost, winner and held-out figures, the reports, the frozen program as an MLflow model
(``efe.report.mlflow_model``) and the run's status (FINISHED, KILLED for an interrupted search, FAILED).
With an active MLflow run (in this process, or ``MLFLOW_RUN_ID`` in the environment) it is nested under it.

Tracking never costs the run: an unreachable or malformed ``tracking.uri`` costs at most
``tracking.timeout`` seconds and one line, after which the run goes on untracked.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import logging
import os
import subprocess
import tempfile
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Callable, Iterator

from omegaconf import DictConfig, OmegaConf

from efe.core.config import CONF_DIR, ConfigError, plain_dict, required
from efe.core.console import say
from efe.frozen.freeze import FrozenProgramError
from efe.handover.model_card import data_fingerprint
from efe.handover.package import build_package
from efe.rundir.atomic import atomic_write_text
from efe.rundir.records import LineageEntry
from efe.rundir.paths import FROZEN, MANIFEST

log = logging.getLogger(__name__)

TRACKING_FILE = "tracking.json"   # in the run directory: where the run was logged (a resume logs to the same run)
STATUS = {"finished": "FINISHED", "stopped by budget": "FINISHED", "interrupted": "KILLED",
          "stopped by LLM failures": "FAILED"}


class Tracker:
    """No tracking (``tracking=none``, or tracking that failed): every call does nothing."""

    def on_entry(self, entry: LineageEntry) -> None:
        pass

    def finish(self, run_dir: Path, search_status: str | None) -> None:
        pass

    def fail(self, exc: BaseException) -> None:
        pass


def start_tracking(cfg: DictConfig, run_dir: Path, setting: str) -> Tracker:
    """The tracker for this run, its MLflow run already open; a do-nothing tracker when off or unavailable."""
    tracking = plain_dict(cfg.get("tracking")) or {}
    backend = str(tracking.get("backend") or "none")
    if backend == "none":
        return Tracker()
    if backend != "mlflow":
        raise ConfigError(f"unknown tracking backend {backend!r}; known: none, mlflow")
    try:
        # lazy: mlflow is a heavy optional dependency (efe[mlflow]), imported only for tracking=mlflow
        import mlflow  # noqa: F401
    except ImportError:
        raise ConfigError("tracking=mlflow needs MLflow: pip install 'efe[mlflow]'") from None
    runs_root = Path(str(cfg.get("runs_root") or run_dir.parent)).resolve()
    timeout = float(required(cfg, "tracking.timeout"))
    uri = resolve_uri(tracking.get("uri"), runs_root, timeout)
    started = time.monotonic()
    try:
        return MlflowTracker(cfg, run_dir, setting, tracking, uri)
    except Exception as exc:  # noqa: BLE001 - tracking must never cost the run
        log.debug("MLflow tracking unavailable", exc_info=True)
        say(f"warning: MLflow tracking at {uri} is unavailable ({_short(exc)}) after "
            f"{time.monotonic() - started:.0f}s; the run goes on untracked")
        return Tracker()


def resolve_uri(uri: Any, runs_root: Path, timeout: float) -> str:
    """The tracking URI to use: ``tracking.uri`` (a URI or a plain path), else ``MLFLOW_TRACKING_URI`` or an
    active run's store, else MLflow's recommended local store, ``sqlite:///<runs_root>/mlflow.db``."""
    # lazy: mlflow is optional (tracking=mlflow only)
    import mlflow

    text = str(uri or "").strip()
    if not text:
        if os.environ.get("MLFLOW_TRACKING_URI") or mlflow.active_run() is not None:
            text = mlflow.get_tracking_uri()
        else:
            runs_root.mkdir(parents=True, exist_ok=True)
            text = f"sqlite:///{runs_root / 'mlflow.db'}"
    if "://" not in text and not text.startswith("file:"):
        text = Path(text).expanduser().resolve().as_uri()   # a plain path: a local directory (file store)
    if text.startswith("file:"):
        # MLflow 3 keeps its file store (in maintenance mode) behind this opt-in; a directory is what was asked for
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    if text.startswith(("http://", "https://")):
        # bounded: one try, each request at most tracking.timeout (MLflow's defaults retry for minutes)
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, int(timeout))))
    return text


def _short(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."


def _flatten(tree: Any, prefix: str = "") -> dict[str, str]:
    if isinstance(tree, dict):
        out: dict[str, str] = {}
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    return {prefix.rstrip("."): json.dumps(tree) if isinstance(tree, (list, tuple)) else str(tree)}


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


def _git_commit(where: Path) -> str | None:
    try:
        proc = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return proc.stdout.strip() if proc.returncode == 0 and proc.stdout.strip() else None


def _efe_version() -> str:
    try:
        return version("efe")
    except PackageNotFoundError:
        return "unknown"


class MlflowTracker(Tracker):
    def __init__(self, cfg: DictConfig, run_dir: Path, setting: str, tracking: dict, uri: str) -> None:
        # lazy: mlflow is optional (tracking=mlflow only)
        from mlflow.tracking import MlflowClient

        self.uri, self.setting, self.run_dir = uri, setting, run_dir
        self.sample_rows = int(required(cfg, "tracking.signature_rows"))
        self.best: float | None = None
        self.closed = False
        with _quiet_store_setup():
            self.client = MlflowClient(tracking_uri=uri)
            self._open(cfg, run_dir, setting, tracking, uri)

    def _open(self, cfg: DictConfig, run_dir: Path, setting: str, tracking: dict, uri: str) -> None:
        # lazy: mlflow is optional (tracking=mlflow only)
        from mlflow.entities import Param

        client = self.client
        previous = _previous(run_dir, uri)
        if previous:  # a resumed run: the same MLflow run, open again
            self.run_id, self.experiment_id = previous["run_id"], previous["experiment_id"]
            client.update_run(self.run_id, "RUNNING")
            self.best = previous.get("best")
            say(f"MLflow: resuming run {self.run_id} at {uri}")
            return
        parent = _parent_run(client)
        self.experiment_id = parent.info.experiment_id if parent else self._experiment(
            str(tracking.get("experiment") or "efe"))
        dataset = str(OmegaConf.select(cfg, "dataset.name", default=None) or run_dir.parent.name)
        tags = {"efe.setting": setting, "efe.run_dir": str(run_dir.resolve()), "efe.version": _efe_version(),
                "mlflow.source.name": f"python -m efe.{setting}", "mlflow.source.type": "LOCAL",
                "mlflow.user": _user()}
        commit = _git_commit(Path.cwd())
        if commit:
            tags["mlflow.source.git.commit"] = commit
        if parent:
            tags["mlflow.parentRunId"] = parent.info.run_id
        run = client.create_run(self.experiment_id, run_name=f"{setting}/{dataset}/{run_dir.name}", tags=tags)
        self.run_id = run.info.run_id
        self._write(best=None)
        params = [Param(k[:250], v[:6000]) for k, v in
                  _flatten(OmegaConf.to_container(cfg, resolve=True)).items() if k != "hydra"]
        for i in range(0, len(params), 100):
            client.log_batch(self.run_id, params=params[i:i + 100])
        self._dataset(run_dir, dataset)
        say(f"MLflow: run {self.run_id} at {uri}" + (f" (nested under {parent.info.run_id})" if parent else ""))

    def _experiment(self, name: str) -> str:
        experiment = self.client.get_experiment_by_name(name)
        if experiment is not None:
            return experiment.experiment_id
        location = None
        if self.uri.startswith("sqlite:///"):  # artefacts next to the database, not in the working directory
            location = (Path(self.uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()
        return self.client.create_experiment(name, artifact_location=location)

    def _dataset(self, run_dir: Path, name: str) -> None:
        """The training data's content fingerprint as a tag and as the run's dataset input."""
        # lazy: mlflow is optional (tracking=mlflow only)
        from mlflow.entities import Dataset, DatasetInput, InputTag

        try:
            fingerprint = data_fingerprint(run_dir)
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.debug("no data fingerprint for MLflow: %s", exc)
            return
        self.client.set_tag(self.run_id, "efe.dataset.fingerprint", fingerprint["sha256"])
        data = Dataset(name=name, digest=fingerprint["sha256"][:32], source_type="local",
                       source=json.dumps({"run_dir": str(run_dir.resolve()), "part": "train"}),
                       profile=json.dumps({"rows": fingerprint["rows"], "columns": fingerprint["columns"]}))
        self.client.log_inputs(self.run_id, [DatasetInput(data, [InputTag("mlflow.data.context", "training")])])

    def _write(self, **extra: Any) -> None:
        record = {"uri": self.uri, "run_id": self.run_id, "experiment_id": self.experiment_id, **extra}
        atomic_write_text(self.run_dir / TRACKING_FILE, json.dumps(record, indent=2))

    def _guard(self, what: str, call: Callable[[], Any]) -> Any:
        """Run one logging call; the first failure stops tracking for the rest of the run, in one line."""
        if self.closed:
            return None
        try:
            return call()
        except Exception as exc:  # noqa: BLE001 - tracking must never cost the run
            self.closed = True
            log.debug("MLflow %s failed", what, exc_info=True)
            say(f"warning: MLflow tracking stopped ({what}: {_short(exc)}); the run goes on untracked")
            return None

    def on_entry(self, entry: LineageEntry) -> None:
        fitness = entry.fitness
        if fitness is None:
            return
        # lazy: mlflow is optional (tracking=mlflow only)
        from mlflow.entities import Metric

        now, step = int(time.time() * 1000), int(entry.iteration or 0)
        self.best = fitness if self.best is None else max(self.best, fitness)
        metrics = [Metric("fitness", fitness, now, step), Metric("best_fitness", self.best, now, step)]
        self._guard("logging a candidate", lambda: self.client.log_batch(self.run_id, metrics=metrics))

    def finish(self, run_dir: Path, search_status: str | None) -> None:
        self._guard("logging the results", lambda: self._results(run_dir))
        self._end(STATUS.get(search_status or "", "FINISHED"))

    def fail(self, exc: BaseException) -> None:
        self._end("KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED")

    def _end(self, status: str) -> None:
        if self.closed:
            return
        self._guard("closing the run", lambda: self.client.set_terminated(self.run_id, status))
        self.closed = True

    def _results(self, run_dir: Path) -> None:
        # lazy: mlflow is optional (tracking=mlflow only)
        from mlflow.entities import Metric

        report = json.loads((run_dir / "report.json").read_text()) if (run_dir / "report.json").exists() else {}
        now = int(time.time() * 1000)
        metrics = [Metric(k, v, now, 0) for k, v in summary_metrics(report).items()]
        for i in range(0, len(metrics), 500):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 500])
        for artefact in ("report.json", "report.md", "config.yaml"):
            if (run_dir / artefact).exists():
                self.client.log_artifact(self.run_id, str(run_dir / artefact))
        self._package(run_dir)
        if (run_dir / FROZEN / MANIFEST).exists():
            # lazy: the model module imports mlflow (optional) and scikit-learn at its top
            from efe.report.mlflow_model import log_frozen_model

            model_uri = log_frozen_model(self.client, self.experiment_id, self.run_id, run_dir, self.setting,
                                         self.sample_rows)
            self.client.set_tag(self.run_id, "efe.model_uri", model_uri)
            self._write(best=self.best, model_uri=model_uri)
            say(f"MLflow: model {model_uri} (mlflow.pyfunc.load_model)")

    def _package(self, run_dir: Path) -> None:
        """The frozen package for tabular runs (the frozen directory when it cannot be packaged), else frozen/."""
        if self.setting == "tab":
            with tempfile.TemporaryDirectory() as tmp:
                try:
                    defaults = plain_dict(OmegaConf.load(CONF_DIR / "package.yaml"))  # in a Hydra app: no compose
                    out = build_package(run_dir, Path(tmp) / "package", defaults)
                except (FrozenProgramError, ValueError, TypeError) as exc:
                    log.warning("could not package the frozen program for MLflow (%s); logging frozen/ instead", exc)
                else:
                    self.client.log_artifacts(self.run_id, str(out), "package")
                    return
        if (run_dir / FROZEN).is_dir():
            self.client.log_artifacts(self.run_id, str(run_dir / FROZEN), FROZEN)


@contextlib.contextmanager
def _quiet_store_setup() -> Iterator[None]:
    """A new sqlite store's schema migrations (MLflow's and alembic's INFO lines) are not the user's business."""
    loggers = [logging.getLogger(name) for name in ("mlflow.store.db.utils", "mlflow.store", "alembic")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _previous(run_dir: Path, uri: str) -> dict | None:
    try:
        record = json.loads((run_dir / TRACKING_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("uri") == uri and record.get("run_id") else None


def _parent_run(client: Any) -> Any:
    """The active MLflow run (in this process, else ``MLFLOW_RUN_ID``) when it lives in this store."""
    # lazy: mlflow is optional (tracking=mlflow only)
    import mlflow

    active = mlflow.active_run()
    parent_id = active.info.run_id if active is not None else os.environ.get("MLFLOW_RUN_ID")
    if not parent_id:
        return None
    try:
        return client.get_run(parent_id)
    except Exception:  # noqa: BLE001 - a run of another store: not a parent here
        log.info("active MLflow run %s is not in this tracking store; not nesting", parent_id)
        return None


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"

