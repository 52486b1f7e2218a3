"""``python -m efe.score`` as a person runs it."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def score(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "efe.score", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_identity_on_breast_cancer_prints_fitness_half():
    proc = score("programs/tab_identity.py", "dataset=breast_cancer")
    assert proc.returncode == 0, proc.stderr
    assert "verdict: valid" in proc.stdout
    assert "fitness: 0.5000" in proc.stdout
    assert "delta +0.0000" in proc.stdout


def test_bad_program_and_bad_inputs_get_clear_errors(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text((ROOT / "programs" / "tab_identity.py").read_text().replace("return X.copy()", "return X.iloc[:3]"))
    proc = score(str(bad), "dataset=titanic", "scorer=tree")
    assert proc.returncode == 1 and "INVALID at stage1" in proc.stdout and "number of rows" in proc.stdout
    proc = score("programs/tab_identity.py", "dataset=nope")
    assert proc.returncode == 2 and "error:" in proc.stderr and "Traceback" not in proc.stderr
    csv = tmp_path / "d.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    proc = score("programs/tab_identity.py", "dataset=csv", f"dataset.path={csv}", "dataset.target=label")
    assert proc.returncode == 2 and "target column 'label' is missing" in proc.stderr
    proc = score("programs/time_identity.py")
    assert proc.returncode == 2 and "time program" in proc.stderr
