"""Typed run specs: built once from the resolved config, written to spec.json and read back unchanged."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from efe.core import specs
from efe.cli.common import search_spec
from efe.core.config import compose, plain_dict
from efe.core.specs import (
    SpecError,
    TabSpec,
    TimeSpec,
    load_spec,
    replace,
    save_spec,
    spec_to_dict,
)
from efe.tab.prepare import prepare_tab_run
from efe.time.run import prepare_time_run


def _tab_spec(tmp_path) -> TabSpec:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=80), "b": rng.integers(0, 5, 80), "label": [0, 1] * 40})
    frame.to_csv(tmp_path / "t.csv", index=False)
    cfg = compose("tab", ["dataset=csv", f"dataset.path={tmp_path / 't.csv'}", "dataset.target=label",
                          "selection.pool_fraction=0", "llm=offline"])
    spec, _, _ = prepare_tab_run(cfg, tmp_path / "run")
    llm = {**plain_dict(cfg.llm), "backend": "offline"}
    steering = {"roles": {"setting": "tab", "names": ["unary"], "router": "ucb", "exploration": 1.0,
                          "cost_weight": 0.0},
                "memory": {"fingerprint": "f", "schema": None, "max_rules": 12, "rules_in_prompt": True,
                           "programs": [], "rules": [], "runs": 0}}
    return replace(spec, search=search_spec(cfg, tmp_path / "run", llm, steering, "namespaces"))


def test_a_tabular_spec_survives_spec_json_unchanged(tmp_path):
    spec = _tab_spec(tmp_path)
    assert spec.pools.n_folds == 5 and spec.gate.label_free_state is False  # conf/tab.yaml's values
    assert spec.search.proposal.novelty.retries_offline == 8 and spec.search.executor["kind"] == "local"
    path = save_spec(tmp_path / "run" / "spec.json", spec)
    assert load_spec(path) == spec and load_spec(tmp_path / "run") == spec
    flat = json.loads(path.read_text())
    assert flat["llm"]["backend"] == "offline" and flat["run_dir"] == spec.run_dir  # flat, as earlier runs wrote it


def test_a_time_spec_survives_spec_json_unchanged(tmp_path):
    cfg = compose("time", ["dataset=synthetic_exp", "dataset.n_series=3"])
    spec, _ = prepare_time_run(cfg, tmp_path)
    assert isinstance(spec, TimeSpec) and spec.search is None
    assert spec.fitness.harm_tolerance == pytest.approx(1e-9)  # in conf/time.yaml, not in code
    assert load_spec(save_spec(tmp_path / "spec.json", spec)) == spec


def test_a_missing_key_is_named_and_an_older_spec_gets_conf_defaults(tmp_path):
    spec = _tab_spec(tmp_path)
    data = spec_to_dict(spec)
    del data["target"]
    (tmp_path / "spec.json").write_text(json.dumps(data))
    with pytest.raises(SpecError, match="missing key 'target'"):
        load_spec(tmp_path / "spec.json")

    older = spec_to_dict(spec)  # written before these keys existed
    del older["feedback"], older["gate"]["label_free_state"], older["proposal"], older["selection_pool"]
    (tmp_path / "spec.json").write_text(json.dumps(older))
    read = load_spec(tmp_path / "spec.json")
    assert read.feedback == spec.feedback and read.gate == spec.gate
    assert read.search.proposal.novelty == spec.search.proposal.novelty and read.search.proposal.judge == {"name": "none"}
    assert read.selection_pool.fraction == 0.0  # no selection pool then

    data = spec_to_dict(spec)
    del data["memory"]  # computed by the run, not in conf: no fallback
    (tmp_path / "spec.json").write_text(json.dumps(data))
    with pytest.raises(SpecError, match="missing key 'memory'"):
        load_spec(tmp_path / "spec.json")


def test_spec_dataclasses_hold_no_defaults():
    for cls in vars(specs).values():
        if isinstance(cls, type) and dataclasses.is_dataclass(cls) and cls.__module__ == specs.__name__:
            for f in dataclasses.fields(cls):
                assert f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING, (cls, f.name)


def test_sandbox_limits_outside_a_run_come_from_conf(tmp_path):
    """A frozen program's sandbox (efe.apply, load_program(sandboxed=True)) takes conf/apply.yaml's limits."""
    import yaml

    from efe.apply.partition import PartitionTransformer
    from efe.frozen.freeze import load_frozen
    from efe.frozen.sandboxed import frozen_limits
    from efe.core.specs import SandboxSpec, conf_part
    from tests.test_frozen_safety import frozen_dir

    written = yaml.safe_load((specs.conf_dir() / "apply.yaml").read_text())["sandbox_limits"]
    assert dataclasses.asdict(frozen_limits()) == written
    transformer = PartitionTransformer(load_frozen(frozen_dir(tmp_path)))
    assert transformer.limits == frozen_limits()
    assert conf_part(SandboxSpec, "tab", "sandbox").timeout_s != frozen_limits().timeout_s
    with pytest.raises(SpecError, match="no 'sandbox' section"):
        conf_part(SandboxSpec, "package", "sandbox")
