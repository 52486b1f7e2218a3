"""Both settings give the one run function every member of the ``Setting`` surface."""

from __future__ import annotations

import inspect

import pytest

from efe.setting import Setting
from efe.tab.setting import TabSetting
from efe.time.setting import TimeSetting

METHODS = sorted(n for n, v in vars(Setting).items() if inspect.isfunction(v) and not n.startswith("_"))


@pytest.mark.parametrize("setting", [TabSetting(), TimeSetting()], ids=["tab", "time"])
def test_a_setting_has_the_whole_surface_with_the_same_parameters(setting):
    assert set(Setting.__annotations__) <= set(dir(setting))
    assert setting.seed_program.exists() and setting.evaluator_file.exists() and setting.template_dir.is_dir()
    for name in METHODS:
        wanted = list(inspect.signature(getattr(Setting, name)).parameters)[1:]
        assert list(inspect.signature(getattr(setting, name)).parameters) == wanted, name
