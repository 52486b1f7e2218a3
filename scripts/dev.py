#!/usr/bin/env python3
"""Create or refresh the project's virtual environment at .venv, then run the main job or the tests.

    python3 scripts/dev.py run  [hydra overrides]   # python -m efe.tab dataset=cps1988 scorer=linear, offline
    python3 scripts/dev.py test [pytest args]       # the whole test suite

Needs only Python 3.11+ and pip. torch is installed first, pinned, so that pip takes the
CPU build instead of resolving a multi-GB CUDA one; then the project with its dev extra.
The install is redone only when pyproject.toml changes. Set-up prints one line per step; pip's
full output goes to .venv/setup.log, and its last lines are shown only when a step fails.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
STAMP = VENV / ".efe-installed"
TORCH = "torch==2.13.0"
SETUP_LOG = VENV / "setup.log"
TAIL_LINES = 25
# The main job: a wage regression (AER::CPS1988, 28,155 rows) judged by a linear model, the kind of table and model
# where feature engineering pays (README "The main job"); overrides given after `run` come later and win.
MAIN_JOB = ("dataset=cps1988", "scorer=linear")


class SetupError(RuntimeError):
    """A set-up step failed; the message names the step and the log file."""


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def fingerprint() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(TORCH.encode())
    return digest.hexdigest()


def run_step(label: str, args: list[str], log: Path, out=None) -> None:
    """One set-up step: one line on the console, the full output appended to ``log``.

    On failure the last lines of the log are shown and ``SetupError`` is raised.
    """
    out = out or sys.stdout
    print(f"[efe] {label} ...", file=out, flush=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as fh:
        fh.write(f"\n=== {label}: {' '.join(args)}\n")
        fh.flush()
        code = subprocess.run(args, stdout=fh, stderr=subprocess.STDOUT, cwd=ROOT).returncode
    if code != 0:
        lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
        print(f"[efe] FAILED: {label} (exit status {code}); last lines of {log}:", file=out, flush=True)
        for line in lines[-TAIL_LINES:]:
            print(f"    {line}", file=out)
        raise SetupError(f"{label} failed (exit status {code}); full log: {log}")


def install_steps(python: Path) -> list[tuple[str, list[str]]]:
    """The pip steps, in order: pip itself, torch (CPU build, pinned), then efe with its dev extra."""
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    return [
        ("upgrading pip", pip + ["--upgrade", "pip"]),
        (f"installing {TORCH} (CPU build)", pip + [TORCH]),
        ("installing efe and its dev extra", pip + ["-e", f"{ROOT}[dev]"]),
    ]


def ensure_venv(out=None) -> Path:
    out = out or sys.stdout
    python = venv_python()
    if STAMP.exists() and python.exists() and STAMP.read_text() == fingerprint():
        return python
    SETUP_LOG.parent.mkdir(parents=True, exist_ok=True)
    SETUP_LOG.write_text("")
    print(f"[efe] setting up {VENV} (full pip log: {SETUP_LOG})", file=out, flush=True)
    if not python.exists():
        run_step("creating the virtual environment", [sys.executable, "-m", "venv", str(VENV)], SETUP_LOG, out)
    for label, args in install_steps(python):
        run_step(label, args, SETUP_LOG, out)
    STAMP.write_text(fingerprint())
    print("[efe] ready", file=out, flush=True)
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "setup"):
        print(__doc__, file=sys.stderr)
        return 2
    try:
        python = ensure_venv()
    except SetupError as exc:
        print(f"[efe] set-up failed: {exc}", file=sys.stderr)
        return 1
    command, rest = argv[0], argv[1:]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    if command == "setup":
        return 0
    if command == "run":
        args = [str(python), "-m", "efe.tab", *MAIN_JOB, *rest]
    else:
        args = [str(python), "-m", "pytest", *parallel_args(rest), *rest]
    return subprocess.run(args, cwd=ROOT, env=env).returncode


def parallel_args(rest: list[str]) -> list[str]:
    """pytest-xdist options for the whole suite: a worker per core plus one, up to 4 (the tests wait on
    subprocesses and sandboxes for part of their time; EFE_TEST_WORKERS overrides, 1 = serial),
    a test file per worker at a time (files share module fixtures), and the slowest tests listed at the end.
    Nothing is added when the caller chose workers, or names tests (a file or a node id)."""
    if any(a.startswith(("-n", "--numprocesses", "--dist")) for a in rest) or \
            any(not a.startswith("-") for a in rest):
        return []
    workers = int(os.environ.get("EFE_TEST_WORKERS") or min((os.cpu_count() or 1) + 1, 4))
    return ["--durations=25", *(["-n", str(workers), "--dist", "loadfile"] if workers > 1 else [])]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
