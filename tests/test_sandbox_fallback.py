"""Where the kernel refuses namespaces (forced here), the seccomp layer still blocks C-level file access."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from efe.sandbox import Sandbox, SandboxFailure
from efe.sandbox.client import DISABLE_ENV
from tests.conftest import ROOT, ratio_table, sandbox_limits, tab_program

X = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
PLAN = [{"op": "transform", "args": ["X", "state"], "out": "T"}]

# pyarrow opens the file in C++: no audit event is raised, so only the kernel can stop this read
ARROW_READ = tab_program("pa = pd.core.arrays.arrow.array.pa\n"
                         "data = pa.OSFile('/etc/passwd').read()\n"
                         "return X.assign(leak=float(len(data)))")
NUMPY_READ = tab_program("raw = getattr(np, 'from' + 'file')('/etc/passwd', dtype=np.uint8)\n"
                         "return X.assign(leak=float(raw.sum()))")


def run(source: str, monkeypatch, disable: str) -> tuple[object, str]:
    monkeypatch.setenv(DISABLE_ENV, disable)
    with Sandbox(sandbox_limits(timeout_s=30, cpu_s=60)) as sandbox:
        return sandbox.run(source, "tab", PLAN, ["T"], values={"X": X, "state": {}}), sandbox.isolation_mode()


@pytest.mark.parametrize("source", [ARROW_READ, NUMPY_READ], ids=["pyarrow-c++-open", "numpy-fromfile"])
def test_forced_fallback_still_blocks_c_level_reads(source, monkeypatch):
    result, mode = run(source, monkeypatch, "namespaces")
    assert mode == "seccomp"
    assert isinstance(result, SandboxFailure), "the program read /etc/passwd"


def test_without_seccomp_the_audit_hook_alone_misses_the_c_level_read(monkeypatch):
    """The control: this is the hole the seccomp layer closes (and what require_isolation refuses)."""
    result, mode = run(ARROW_READ, monkeypatch, "namespaces,seccomp")
    assert mode == "audit-only"
    assert not isinstance(result, SandboxFailure), result.reason
    assert result.outputs["T"]["leak"].iloc[0] > 0


def test_require_isolation_refuses_a_machine_without_kernel_isolation(tmp_path):
    csv = tmp_path / "t.csv"
    ratio_table(60, seed=0).to_csv(csv, index=False)
    env = dict(os.environ, **{DISABLE_ENV: "namespaces,seccomp"})
    proc = subprocess.run([sys.executable, "-m", "efe.tab", "dataset=csv", f"dataset.path={csv}",
                           "dataset.target=label", f"runs_root={tmp_path / 'runs'}", "sandbox.require_isolation=true"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: sandbox.require_isolation=true")
    assert "sandbox isolation" not in proc.stderr  # refused before anything ran


def test_score_and_apply_print_the_isolation_and_honour_require_isolation(tmp_path):
    """efe.score and efe.apply say what holds the program in, and refuse audit-only when told to."""
    import numpy as np

    from efe.frozen.freeze import freeze, input_schema

    env = dict(os.environ, **{DISABLE_ENV: "namespaces,seccomp"})
    env.pop("EFE_LLM_API_BASE", None)
    cli = lambda *args: subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                                       timeout=300, env=env)
    csv = tmp_path / "t.csv"
    table = ratio_table(80, seed=0)
    table.to_csv(csv, index=False)
    program = tmp_path / "program.py"
    program.write_text(tab_program("out = X.copy()\nout['ratio'] = X['a'] / X['b']\nreturn out"))
    score = ["efe.score", str(program), "dataset=csv", f"dataset.path={csv}", "dataset.target=label", "scorer=tree"]
    refused = cli(*score, "sandbox.require_isolation=true")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert refused.stderr.strip().splitlines()[-1].startswith("error: sandbox.require_isolation=true")
    scored = cli(*score)
    assert scored.returncode in (0, 1), scored.stderr[-3000:]
    assert "sandbox isolation: audit-only" in scored.stdout + scored.stderr

    X = table.drop(columns=["label"])
    frozen = freeze(tmp_path / "frozen", "tab", program.read_text(), {}, schema=input_schema(X),
                    output_columns=[*X.columns, "ratio"])
    out = tmp_path / "features.parquet"
    apply = ["efe.apply", f"frozen={frozen}", f"input={csv.with_name('X.csv')}", f"output={out}"]
    X.to_csv(csv.with_name("X.csv"), index=False)
    refused = cli(*apply, "sandbox_limits.require_isolation=true")
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-3000:]
    assert refused.stderr.strip().splitlines()[-1].startswith("error: sandbox_limits.require_isolation=true")
    assert not out.exists()
    applied = cli(*apply)
    assert applied.returncode == 0, applied.stderr[-3000:]
    assert "apply: sandbox isolation: audit-only" in applied.stderr
    assert np.isclose(pd.read_parquet(out)["ratio"], X["a"] / X["b"]).all()


def test_load_program_refuses_a_machine_without_kernel_isolation_when_asked(tmp_path, monkeypatch):
    """efe.load_program(require_isolation=True): refused where only the audit hook would hold the program in."""
    import efe
    from efe.core.errors import FrozenRunError
    from efe.frozen.freeze import freeze, input_schema

    table = ratio_table(40, seed=1)
    X = table.drop(columns=["label"])
    frozen = freeze(tmp_path / "frozen", "tab", tab_program("out = X.copy()\nout['ratio'] = X['a'] / X['b']\nreturn out"),
                    {}, schema=input_schema(X), output_columns=[*X.columns, "ratio"])
    monkeypatch.setenv(DISABLE_ENV, "namespaces,seccomp")
    with pytest.raises(FrozenRunError, match="require_isolation=true"):
        efe.load_program(frozen, require_isolation=True)
    with pytest.raises(FrozenRunError, match="contradiction|sandboxed=False"):
        efe.load_program(frozen, require_isolation=True, sandboxed=False)
    features = efe.load_program(frozen)  # conf/apply.yaml's default: audit-only is allowed
    assert np.isclose(features.transform(X)["ratio"], X["a"] / X["b"]).all()
