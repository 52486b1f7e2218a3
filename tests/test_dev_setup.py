"""scripts/dev.py set-up output: one line per step, pip's log in a file, its tail only when a step fails."""

from __future__ import annotations

import importlib.util
import io
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


@pytest.fixture
def dev(tmp_path, monkeypatch):
    """scripts/dev.py as a module, pointed at a virtual environment in tmp_path (the real .venv is untouched)."""
    spec = importlib.util.spec_from_file_location("efe_dev_script", ROOT / "scripts" / "dev.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    venv = tmp_path / "venv"
    monkeypatch.setattr(module, "VENV", venv)
    monkeypatch.setattr(module, "STAMP", venv / ".efe-installed")
    monkeypatch.setattr(module, "SETUP_LOG", venv / "setup.log")
    monkeypatch.setattr(module, "venv_python", lambda: Path(sys.executable))  # an interpreter that exists
    return module


def _pip(*args: str) -> list[str]:
    return [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]


def test_a_passing_set_up_shows_only_the_step_lines(dev, monkeypatch):
    monkeypatch.setattr(dev, "install_steps", lambda python: [
        ("listing packages", _pip("list")), ("installing efe and its dev extra", _pip("--version"))])
    out = io.StringIO()
    dev.ensure_venv(out)
    lines = out.getvalue().splitlines()
    assert lines == [f"[efe] setting up {dev.VENV} (full pip log: {dev.SETUP_LOG})", "[efe] listing packages ...",
                     "[efe] installing efe and its dev extra ...", "[efe] ready"]
    log = dev.SETUP_LOG.read_text()
    assert "=== listing packages" in log and "pytest" in log and "pip " in log  # pip's output went to the log
    again = io.StringIO()
    dev.ensure_venv(again)
    assert again.getvalue() == ""  # nothing to do once installed


def test_a_failing_pip_step_shows_its_tail_and_stops(dev, monkeypatch, tmp_path):
    empty = tmp_path / "no-packages-here"
    empty.mkdir()
    failing = _pip("install", "--no-index", "--find-links", str(empty), "efe-no-such-package==9.9")
    monkeypatch.setattr(dev, "install_steps", lambda python: [
        ("installing torch==0 (CPU build)", failing), ("installing efe and its dev extra", _pip("--version"))])
    out = io.StringIO()
    with pytest.raises(dev.SetupError, match=r"installing torch==0 \(CPU build\) failed .*full log: .*setup.log"):
        dev.ensure_venv(out)
    text = out.getvalue()
    assert "[efe] installing torch==0 (CPU build) ..." in text
    assert f"[efe] FAILED: installing torch==0 (CPU build) (exit status 1); last lines of {dev.SETUP_LOG}:" in text
    assert "efe-no-such-package" in text.split("FAILED")[1]  # pip's own reason, from the log's tail
    assert "installing efe and its dev extra" not in text and not dev.STAMP.exists()


def test_main_reports_a_failed_set_up_in_one_line_and_exits_1(dev, monkeypatch, capsys):
    monkeypatch.setattr(dev, "install_steps", lambda python: [("a step that fails", [sys.executable, "-c", "raise SystemExit(3)"])])
    assert dev.main(["setup"]) == 1
    captured = capsys.readouterr()
    assert "[efe] FAILED: a step that fails (exit status 3)" in captured.out
    assert captured.err.strip().splitlines() == [f"[efe] set-up failed: a step that fails failed (exit status 3); "
                                                 f"full log: {dev.SETUP_LOG}"]


def test_the_whole_suite_runs_on_every_core_and_a_named_test_runs_alone(dev, monkeypatch):
    monkeypatch.delenv("EFE_TEST_WORKERS", raising=False)
    monkeypatch.setattr(dev.os, "cpu_count", lambda: 2)
    assert dev.parallel_args([]) == ["--durations=25", "-n", "3", "--dist", "loadfile"]
    assert dev.parallel_args(["-x", "-q"])[-4:] == ["-n", "3", "--dist", "loadfile"]
    assert dev.parallel_args(["tests/test_tasks.py"]) == []  # a named file or test: as the caller asked
    assert dev.parallel_args(["-n", "4"]) == [] and dev.parallel_args(["-n4"]) == []
    monkeypatch.setenv("EFE_TEST_WORKERS", "1")
    assert dev.parallel_args([]) == ["--durations=25"]
