"""Sandbox plans are typed steps; a plan given as steps runs exactly like the same plan as dicts."""

from __future__ import annotations

import pandas as pd
import pytest

from efe.sandbox import Sandbox, SandboxFailure
from efe.sandbox import plan as step
from tests.conftest import IDENTITY_TAB, sandbox_limits, tab_program


def test_a_step_round_trips_and_an_unknown_op_is_refused():
    s = step.transform("X", "state", "T", keep_going=True)
    assert step.Step.from_dict(s.to_dict()) == s and s.to_dict()["args"] == ["X", "state"]
    assert step.digest("a", "b", out="d").args == ("a", "b")
    with pytest.raises(ValueError, match="unknown plan step 'snapshot'"):
        step.Step("snapshot", ("s",), "s_copy")


def test_typed_and_dict_plans_give_the_same_outputs_and_a_digest_sees_an_in_place_change():
    X = pd.DataFrame({"a": [1.0, 2.0, 3.0, 4.0], "b": [2.0, 1.0, 0.5, 4.0]})
    y = pd.Series([0, 1, 0, 1], name="label")
    typed = [step.fit("X", "y", "state"), step.digest("X", out="before"), step.transform("X", "state", "T"),
             step.digest("X", out="after")]
    mutating = tab_program("X['a'] = X['a'] * 2\nreturn X")
    with Sandbox(sandbox_limits(timeout_s=30, cpu_s=60)) as sb:
        a = sb.run(IDENTITY_TAB, "tab", typed, ["T", "before", "after"], values={"X": X, "y": y})
        b = sb.run(IDENTITY_TAB, "tab", [s.to_dict() for s in typed], ["T", "before", "after"], values={"X": X, "y": y})
        m = sb.run(mutating, "tab", typed, ["before", "after"], values={"X": X, "y": y})
    assert not isinstance(a, SandboxFailure) and not isinstance(b, SandboxFailure), (a, b)
    pd.testing.assert_frame_equal(a.outputs["T"], b.outputs["T"])
    assert a.outputs["before"] == a.outputs["after"] == b.outputs["after"]
    assert not isinstance(m, SandboxFailure) and m.outputs["before"] != m.outputs["after"]
