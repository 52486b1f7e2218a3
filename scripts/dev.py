#!/usr/bin/env python3
"""Create or refresh the project's virtual environment at .venv, then run the main job or the tests.

    python3 scripts/dev.py run  [hydra overrides]   # python -m efe.tab with offline defaults
    python3 scripts/dev.py test [pytest args]       # the whole test suite

Needs only Python 3.11+ and pip. torch is installed first, pinned, so that pip takes the
CPU build instead of resolving a multi-GB CUDA one; then the project with its dev extra.
The install is redone only when pyproject.toml changes.
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


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def fingerprint() -> str:
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes())
    digest.update(TORCH.encode())
    return digest.hexdigest()


def ensure_venv() -> Path:
    python = venv_python()
    if not python.exists():
        print(f"[efe] creating virtual environment at {VENV}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if STAMP.exists() and STAMP.read_text() == fingerprint():
        return python
    pip = [str(python), "-m", "pip", "install", "--disable-pip-version-check"]
    print(f"[efe] installing {TORCH} (CPU build) and the project into {VENV}", flush=True)
    subprocess.run(pip + ["--upgrade", "pip"], check=True)
    subprocess.run(pip + [TORCH], check=True)
    subprocess.run(pip + ["-e", f"{ROOT}[dev]"], check=True)
    STAMP.write_text(fingerprint())
    return python


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("run", "test", "setup"):
        print(__doc__, file=sys.stderr)
        return 2
    python = ensure_venv()
    command, rest = argv[0], argv[1:]
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    if command == "setup":
        return 0
    if command == "run":
        args = [str(python), "-m", "efe.tab", *rest]
    else:
        args = [str(python), "-m", "pytest", *rest]
    return subprocess.run(args, cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
