"""The architecture as code: import rules (import-linter) and a wheel that runs outside the checkout."""

from __future__ import annotations

import ast
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

BIN = Path(sys.executable).parent


def test_import_contracts_hold():
    """`lint-imports` reads the contracts in pyproject.toml (DESIGN.md, "Layers and import rules")."""
    proc = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "0 broken" in proc.stdout


def test_an_evaluator_importing_the_search_breaks_a_contract(tmp_path):
    """The contracts are not vacuous: a copy of the tree with one upward import fails them."""
    tree = tmp_path / "tree"
    for part in ("efe", "evaluators", "conf", "programs"):
        shutil.copytree(ROOT / part, tree / part, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tree / "pyproject.toml")
    gates = tree / "evaluators" / "tabular" / "gates.py"
    gates.write_text(gates.read_text() + "\nfrom efe.search import lineage  # noqa: E402,F401\n")
    env = {**os.environ, "PYTHONPATH": str(tree)}
    proc = subprocess.run([str(BIN / "lint-imports"), "--no-cache"], cwd=tree, capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode != 0
    assert "evaluators.tabular.gates -> efe.search" in proc.stdout


def test_seed_programs_import_nothing_of_efe():
    for path in sorted((ROOT / "programs").glob("*_identity.py")):
        tree = ast.parse(path.read_text())
        modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        modules |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assert not {m for m in modules if m.split(".")[0] in ("efe", "evaluators")}, path


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """The project built as a wheel and installed (without dependencies) into a throw-away directory."""
    work = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                            "-q", "-w", str(work / "dist"), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr[-3000:]
    wheel = next((work / "dist").glob("efe-*.whl"))
    target = work / "site"
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target),
                              str(wheel)], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stderr[-3000:]
    return target


def _run_outside(target: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(target), "PYTHONSAFEPATH": "1"}
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


def test_wheel_ships_conf_and_seed_programs_and_runs_outside_the_checkout(installed_wheel, tmp_path):
    where = _run_outside(installed_wheel, tmp_path, "-c",
                         "import efe, efe.core.resources as r; print(efe.__file__); print(r.conf_dir()); "
                         "print(r.seed_program('tab'))")
    assert where.returncode == 0, where.stderr
    lines = where.stdout.split()
    assert all(line.startswith(str(installed_wheel)) for line in lines), lines
    assert (Path(lines[1]) / "tab.yaml").exists() and Path(lines[2]).exists()

    seed = Path(lines[2])
    score = _run_outside(installed_wheel, tmp_path, "-m", "efe.score", str(seed), "dataset=breast_cancer")
    assert score.returncode == 0, score.stderr[-3000:]
    assert "fitness: 0.5000" in score.stdout

    run = _run_outside(installed_wheel, tmp_path, "-m", "efe.tab", "dataset=breast_cancer",
                       "evolution.iterations=2", f"runs_root={tmp_path / 'runs'}")
    assert run.returncode == 0, run.stderr[-3000:]
    run_dirs = list((tmp_path / "runs" / "tab" / "breast_cancer").iterdir())
    assert len(run_dirs) == 1
    assert (run_dirs[0] / "frozen" / "manifest.json").exists()
    assert (run_dirs[0] / "report.md").exists()


def _import_counter():
    """scripts/count_imports.py, the one definition of "a function-level import" and its comment."""
    spec = importlib.util.spec_from_file_location("count_imports", ROOT / "scripts" / "count_imports.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_function_level_import_says_why_it_is_lazy():
    """Imports sit at module level; one inside a function keeps a heavy optional dependency off the
    import path (or does the importing it is for) and says so with a ``# lazy: <why>`` comment."""
    counter = _import_counter()
    uncommented = counter.count([ROOT / "efe", ROOT / "evaluators"], uncommented=True)
    assert not uncommented, f"function-level imports without a '# lazy:' comment: {uncommented}"
    # the check itself: an uncommented import inside a function is found, a commented one is not
    probe = "def f():\n    import json\n\n\ndef g():\n    # lazy: why\n    import torch\n    import ray\n"
    lines = probe.splitlines()
    found = [n.lineno for n in counter.function_imports(probe) if not counter.has_lazy_comment(lines, n)]
    assert found == [2]


def test_only_the_adapter_imports_openevolve_in_the_search():
    """openevolve internals live in efe.search.openevolve_adapter; efe.llm and the evaluators use only its
    public classes (LLMInterface, OpenAILLM, EvaluationResult), pinned by tests/test_openevolve_adapter.py."""
    allowed = {"efe/search/openevolve_adapter.py", "efe/llm/client.py", "efe/llm/proposal.py",
               "efe/llm/backends.py", "evaluators/service.py"}
    importing = set()
    for path in [*(ROOT / "efe").rglob("*.py"), *(ROOT / "evaluators").rglob("*.py")]:
        tree = ast.parse(path.read_text())
        modules = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
        modules |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        if any(m.split(".")[0] == "openevolve" for m in modules):
            importing.add(path.relative_to(ROOT).as_posix())
    assert importing <= allowed, importing - allowed
    assert "efe/search/openevolve_adapter.py" in importing
