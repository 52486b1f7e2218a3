"""``efe.load_program`` on tampered frozen directories: nothing unchecked runs in the caller's process."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import efe
from efe.frozen.freeze import FrozenProgramError, freeze, input_schema
from tests.conftest import tab_program

X = pd.DataFrame({"a": [1.0, 2.0, 4.0], "b": [2.0, 1.0, 8.0]})
GOOD = tab_program("out = X.copy()\nout['ratio'] = X['a'] / X['b']\nreturn out",
                   fit_body="return {'scale': np.array([1.0, 2.0])}")


def frozen_dir(tmp_path: Path, source: str = GOOD) -> Path:
    return freeze(tmp_path / "frozen", "tab", source, {"scale": np.array([1.0, 2.0])}, schema=input_schema(X),
                  output_columns=["a", "b", "ratio"])


def rewrite_manifest(directory: Path, change) -> None:
    manifest = json.loads((directory / "manifest.json").read_text())
    change(manifest)
    (directory / "manifest.json").write_text(json.dumps(manifest))


def hostile(marker: Path) -> str:
    """Code that writes a file when the module is executed (opening files is what the policy forbids)."""
    return GOOD.replace("import pandas as pd", f"import pandas as pd\nopen({str(marker)!r}, 'w').write('owned')")


def test_untampered_program_loads_and_transforms(tmp_path):
    out = efe.load_program(frozen_dir(tmp_path)).transform(X)
    assert list(out["ratio"]) == [0.5, 2.0, 0.5]


def test_manifest_cannot_opt_program_py_out_of_the_hash_check(tmp_path):
    directory = frozen_dir(tmp_path)
    marker = tmp_path / "owned"
    (directory / "program.py").write_text(hostile(marker))
    rewrite_manifest(directory, lambda m: m["files"].pop("program.py"))
    with pytest.raises(FrozenProgramError, match="does not list program.py"):
        efe.load_program(directory)
    assert not marker.exists()


def test_recomputed_hash_of_hostile_code_is_stopped_by_the_static_policy(tmp_path):
    directory = frozen_dir(tmp_path)
    marker = tmp_path / "owned"
    source = hostile(marker)
    (directory / "program.py").write_text(source)
    rewrite_manifest(directory, lambda m: m["files"].update(
        {"program.py": hashlib.sha256(source.encode()).hexdigest()}))
    with pytest.raises(FrozenProgramError, match="static check: forbidden: use of 'open'"):
        efe.load_program(directory)
    assert not marker.exists()


def test_a_file_the_manifest_does_not_list_is_refused(tmp_path):
    directory = frozen_dir(tmp_path)
    (directory / "state_arrays" / "9999.npy").write_bytes(b"extra")
    with pytest.raises(FrozenProgramError, match="does not list .*9999.npy"):
        efe.load_program(directory)


def test_an_edited_state_file_is_refused(tmp_path):
    directory = frozen_dir(tmp_path)
    arrays = sorted((directory / "state_arrays").glob("*.npy"))
    np.save(arrays[0], np.array([9.0, 9.0]))
    with pytest.raises(FrozenProgramError, match="does not match its hash"):
        efe.load_program(directory)


def test_sandboxed_transform_blocks_what_the_static_check_cannot_see(tmp_path):
    """pandas' read_csv is an allowed name, so only the sandbox stops it reading a file."""
    source = GOOD.replace("out['ratio'] = X['a'] / X['b']",
                          "out['ratio'] = X['a'] / X['b']\n        out['leak'] = len(pd.read_csv('/etc/passwd'))")
    directory = frozen_dir(tmp_path, source)
    transformer = efe.load_program(directory, sandboxed=True)
    with pytest.raises(RuntimeError, match="forbidden"):
        transformer.transform(X)
    good = efe.load_program(frozen_dir(tmp_path / "good"), sandboxed=True).transform(X)
    pd.testing.assert_frame_equal(good, efe.load_program(tmp_path / "good" / "frozen").transform(X))
