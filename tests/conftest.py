"""Shared fixtures: tiny data, a run spec on disk, a sandbox, a tiny TabPFN checkpoint."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# runs started by tests store their memory (memory.save) in a temporary file, never in the user's cache
os.environ.setdefault("EFE_MEMORY_PATH", os.path.join(tempfile.mkdtemp(prefix="efe-test-memory-"), "memory.jsonl"))
ROOT = Path(__file__).resolve().parents[1]
IDENTITY_TAB = (ROOT / "programs" / "tab_identity.py").read_text()

# scripts/dev.py test runs the suite on every core with pytest-xdist, a file per worker at a time (--dist
# loadfile), handed out in collection order: the slowest files (from --durations) go first, so that the
# workers finish together instead of one of them starting the README's commands last.
SLOWEST_FIRST = ("test_readme.py", "test_run_faults.py", "test_tab_run.py", "test_mlflow_tracking.py",
                 "test_time_run.py", "test_mlforecast.py", "test_deterministic.py", "test_ray_executor.py",
                 "test_time_evidence.py", "test_traces.py", "test_apply_engines.py", "test_time_selection.py",
                 "test_package_review.py", "test_tasks.py", "test_plots.py", "test_roles_run.py",
                 "test_scorer_runs.py", "test_cli_convention.py", "test_architecture.py", "test_ray_cluster.py",
                 "test_stored_data.py", "test_sandbox_fallback.py", "test_first_run.py", "test_frozen_product.py",
                 "test_offline_reach.py")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: a file's own order is kept


_FILE_SECONDS: dict[str, float] = {}  # seconds per test file (setup, call and teardown), summed on the controller


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    path = report.nodeid.split("::")[0]
    _FILE_SECONDS[path] = _FILE_SECONDS.get(path, 0.0) + report.duration


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The slowest files of a whole-suite run, the order SLOWEST_FIRST should follow."""
    if len(_FILE_SECONDS) < 20:  # a few files named on the command line: nothing to schedule
        return
    terminalreporter.write_sep("=", "slowest test files (SLOWEST_FIRST in tests/conftest.py should follow this)")
    for path, seconds in sorted(_FILE_SECONDS.items(), key=lambda kv: -kv[1])[:25]:
        terminalreporter.write_line(f"{seconds:8.1f}s {path}")


# Figures cost about 3 s of CPU at the end of every run; only tests/test_plots.py looks at them.
NO_PLOTS = "report.plots=false"


def tab_program(body: str, fit_body: str = "return {}") -> str:
    """A tabular program whose transform is ``body`` (indented code using X and state)."""
    indent = lambda text, n: "\n".join(" " * n + line if line.strip() else line
                                       for line in text.strip("\n").splitlines())
    return f'''
# EVOLVE-BLOCK-START
import numpy as np
import pandas as pd


class FeatureProgram:
    def __init__(self, seed=0):
        self.seed = seed

    def fit(self, X, y):
{indent(fit_body, 8)}

    def transform(self, X, state):
{indent(body, 8)}
# EVOLVE-BLOCK-END


def build_feature_program(seed=0):
    return FeatureProgram(seed)
'''


def ratio_table(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """Label depends on a/b, which axis-aligned trees cannot express in a few splits."""
    rng = np.random.default_rng(seed)
    a = rng.lognormal(0.0, 0.8, n)
    b = rng.lognormal(0.0, 0.8, n)
    noise = rng.normal(size=(n, 2))
    logit = 4.0 * np.log(a / b) + rng.normal(0, 0.5, n)
    return pd.DataFrame({
        "a": a, "b": b, "n1": noise[:, 0], "n2": noise[:, 1],
        "label": np.where(logit > 0, "yes", "no"),
    })


def scale_ratio_table(n: int = 800, seed: int = 0) -> pd.DataFrame:
    """a and b share a random scale spanning orders of magnitude: alone they say little, a/b says all."""
    rng = np.random.default_rng(seed)
    scale = rng.lognormal(0.0, 2.0, n)
    u, v = rng.lognormal(0.0, 0.5, n), rng.lognormal(0.0, 0.5, n)
    logit = 3.0 * np.log(u / v) + rng.normal(0, 0.3, n)
    noise = rng.normal(size=(n, 2))
    return pd.DataFrame({"a": scale * u, "b": scale * v, "n1": noise[:, 0], "n2": noise[:, 1],
                         "label": np.where(logit > 0, "yes", "no")})


def make_spec(tmp: Path, frame: pd.DataFrame, target: str, scorer: dict | None = None, **over) -> dict:
    """A run spec whose training part is ``frame`` (as efe.tab would write it)."""
    from efe.datasets.split import write_table
    from efe.datasets.tabular import prepare

    ds = prepare(frame, target, name="test")
    path = tmp / "train.parquet"
    write_table(ds, path)
    spec = {
        "setting": "tab", "train_path": str(path), "target": target, "seed": 0, "run_dir": None,
        "dataset": {"name": "test", "description": "", "positive_label": None, "warnings": []},
        "selection_pool": {"fraction": 0.0, "seed": 0},
        "scorer": scorer or {"name": "tree", "params": {"max_depth": 3, "min_samples_leaf": 5}},
        "pools": {"n_folds": 3, "n_repeats": 1, "cascade_folds": 2},
        "gate": {"sample_rows": 120, "n_partitions": 3, "max_column_factor": 5, "max_abs_value": 1e12},
        "fitness": {}, "sandbox": {"timeout_s": 20, "memory_mb": 1024, "cpu_s": 30},
        "feedback": {"enabled": True, "permutation_repeats": 2, "tree_depth": 3, "max_features": 10},
    }
    for key, value in over.items():
        spec[key] = value
    return spec


def sandbox_limits(**changes):
    """conf/tab.yaml's sandbox limits (the spec's ``SandboxSpec``) with ``changes``."""
    from efe.core.specs import SandboxSpec, conf_part, replace

    return replace(conf_part(SandboxSpec, "tab", "sandbox"), **changes)


@pytest.fixture(scope="module")
def sandbox():
    from efe.sandbox import Sandbox

    with Sandbox(sandbox_limits(timeout_s=5, memory_mb=512, cpu_s=10)) as sb:
        yield sb


@pytest.fixture(scope="session")
def tiny_tabpfn(tmp_path_factory) -> Path:
    from tests.helpers.tiny_tabpfn import build_tiny_tabpfn_checkpoint

    return build_tiny_tabpfn_checkpoint(tmp_path_factory.mktemp("tabpfn") / "tiny_tabpfn.ckpt")
