"""Program files: the seeds follow their contracts; the loader names what is missing."""

from __future__ import annotations

import pytest

from efe.core.programs import ProgramContractError, read_program
from tests.conftest import ROOT


def test_seed_programs_follow_their_contracts():
    assert read_program(ROOT / "programs" / "tab_identity.py").setting == "tab"
    assert read_program(ROOT / "programs" / "time_identity.py").setting == "time"


@pytest.mark.parametrize("edit, problem", [
    (lambda s: s.replace("# EVOLVE-BLOCK-END\n", ""), "EVOLVE-BLOCK-END"),
    (lambda s: s.replace("    def transform(self, X: pd.DataFrame, state: dict) -> pd.DataFrame:\n        return X.copy()\n", ""),
     "class FeatureProgram has no method transform(self, X, state)"),
    (lambda s: s.replace("def fit(self, X: pd.DataFrame, y: pd.Series)", "def fit(self, X)"),
     "FeatureProgram.fit takes 1 argument(s)"),
    (lambda s: s.replace("def build_feature_program(seed: int = 0)", "def build_feature_program(seed, other)"),
     "must need only one argument"),
])
def test_loader_says_exactly_what_is_missing(tmp_path, edit, problem):
    source = (ROOT / "programs" / "tab_identity.py").read_text()
    path = tmp_path / "p.py"
    path.write_text(edit(source))
    with pytest.raises(ProgramContractError) as err:
        read_program(path, "tab")
    assert problem in str(err.value)


def test_loader_rejects_non_programs(tmp_path):
    path = tmp_path / "x.py"
    path.write_text("print('hello')\n")
    with pytest.raises(ProgramContractError, match="neither build_feature_program"):
        read_program(path)
    with pytest.raises(ProgramContractError, match="does not exist"):
        read_program(tmp_path / "missing.py")
