"""``efe.load_program`` on tampered frozen directories: nothing unchecked runs in the caller's process."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import efe
from efe.core.errors import FrozenRunError
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


# ---------------------------------------------------------------- reload in the sandbox by default (issue 28, item 1)
TIME_IDENTITY = (Path(__file__).resolve().parents[1] / "programs" / "time_identity.py").read_text()


def payload(marker: Path) -> str:
    """What the hostile probe used: a name the static check cannot see (``os.system`` spelled at run time)."""
    return f"getattr(getattr(pd.io.common, 'o' + 's'), 'sys' + 'tem')('touch {marker}')"


def recompute_hash(directory: Path, source: str) -> None:
    """The edit of someone who can write the directory: program.py and its hash in the manifest."""
    (directory / "program.py").write_text(source)
    rewrite_manifest(directory, lambda m: m["files"].update(
        {"program.py": hashlib.sha256(source.encode()).hexdigest()}))


def test_by_default_a_reloaded_program_runs_nothing_in_this_process(tmp_path):
    directory = frozen_dir(tmp_path)
    at_load, at_transform = tmp_path / "at_load", tmp_path / "at_transform"
    source = GOOD.replace("import pandas as pd", "import pandas as pd\n" + payload(at_load))
    source = source.replace("out['ratio'] = X['a'] / X['b']",
                            "out['ratio'] = X['a'] / X['b']\n        " + payload(at_transform))
    recompute_hash(directory, source)
    transformer = efe.load_program(directory)
    assert not at_load.exists(), "module-level code ran at load_program()"
    with pytest.raises(FrozenRunError, match="forbidden"):
        transformer.transform(X)
    assert not at_load.exists() and not at_transform.exists()
    refit = efe.load_program(directory, refit=True)
    with pytest.raises(FrozenRunError, match="forbidden"):
        refit.fit(X, pd.Series([0, 1, 0]))
    assert not at_load.exists()


def test_trusting_the_directory_still_checks_its_hashes_before_any_of_it_runs(tmp_path):
    directory = frozen_dir(tmp_path)
    marker = tmp_path / "owned"
    source = GOOD.replace("import pandas as pd", "import pandas as pd\n" + payload(marker))
    (directory / "program.py").write_text(source)  # the manifest's hash not recomputed
    with pytest.raises(FrozenProgramError, match="does not match its hash"):
        efe.load_program(directory, sandboxed=False)
    assert not marker.exists()
    trusted = efe.load_program(frozen_dir(tmp_path / "good"), sandboxed=False).transform(X)
    pd.testing.assert_frame_equal(trusted, efe.load_program(tmp_path / "good" / "frozen").transform(X))


def time_frozen_dir(tmp_path: Path, source: str = TIME_IDENTITY) -> Path:
    return freeze(tmp_path / "frozen", "time", source, {}, extra={"prediction_length": 4, "season": 1})


def test_a_time_series_program_runs_in_the_sandbox_by_default(tmp_path):
    y = np.arange(1.0, 21.0)
    good = efe.load_program(time_frozen_dir(tmp_path / "good"))
    z = good.fit(y).transform(y)
    np.testing.assert_array_equal(z, y)
    np.testing.assert_array_equal(good.inverse_transform(z[:4]), y[:4])
    trusted = efe.load_program(tmp_path / "good" / "frozen", sandboxed=False)
    np.testing.assert_array_equal(trusted.fit(y).transform(y), z)

    directory = time_frozen_dir(tmp_path / "bad")
    marker = tmp_path / "owned"
    fit_line = '        return {"hist_len": int(len(y_hist))}'
    source = TIME_IDENTITY.replace(fit_line, "        " + payload(marker) + "\n" + fit_line)
    source = source.replace("import numpy as np", "import numpy as np\nimport pandas as pd", 1)
    assert payload(marker) in source
    recompute_hash(directory, source)
    normalization = efe.load_program(directory)
    with pytest.raises(FrozenRunError, match="forbidden"):
        normalization.fit(y)
    assert not marker.exists()
