"""openevolve's Config, built in code from the Hydra config (never a second hand-written YAML).

``evolution.openevolve`` mirrors openevolve's own Config fields, so any of them can be set
from the command line (``evolution.openevolve.database.num_islands=5``, or with ``+`` for a
field not listed in conf/). What depends on the run (system message, template directory,
the LLM models with efe's ``init_client``, parallelism) is filled in here.
"""

from __future__ import annotations

import copy
import os
from typing import Any, Mapping

from efe.llm.client import resolve_backend
from efe.llm.proposal import init_proposer
from efe.search.openevolve_adapter import Config, config_from_dict


def llm_models(llm: Mapping[str, Any], backend: str) -> list[dict]:
    common = {
        "init_client": init_proposer,  # efe's client + plan-first, judge, proposals log
        "api_base": llm.get("api_base"),
        "api_key": None,  # read from llm.api_key_env inside the workers, never stored
        "temperature": llm.get("temperature"),
        "max_tokens": llm.get("max_tokens"),
        # efe's back end is the one retry layer (llm.retries, llm.timeout): openevolve's stays off
        "retries": 0,
        "retry_delay": 0,
    }
    common = {k: v for k, v in common.items() if v is not None}  # openevolve's dataclasses reject None
    if backend == "openai":
        models = llm.get("models") or []
        if not models:
            raise ValueError("llm=openai needs llm.models, e.g. llm.models='[{name: gpt-4o-mini, weight: 1}]'")
        return [{**common, "name": str(m["name"]), "weight": float(m.get("weight", 1.0))} for m in models]
    name = {"offline": "efe-offline-proposer", "replay": "replay"}[backend]
    return [{**common, "name": name, "weight": 1.0}]


def build_config(openevolve: Mapping[str, Any], llm: Mapping[str, Any], *, system_message: str,
                 template_dir: str, seed: int, iterations: int, output_dir: str,
                 deterministic: bool = False) -> Config:
    """``deterministic``: one evaluation at a time and openevolve's ``random_seed`` is the run's seed."""
    d = copy.deepcopy(dict(openevolve))
    d["max_iterations"] = int(iterations)
    d.setdefault("random_seed", seed)
    if deterministic:
        d["random_seed"] = seed
        d.setdefault("evaluator", {})["parallel_evaluations"] = 1
    d.setdefault("log_dir", os.path.join(output_dir, "logs"))
    prompt = d.setdefault("prompt", {})
    prompt["system_message"] = system_message
    if not prompt.get("template_dir"):
        prompt["template_dir"] = template_dir
    evaluator = d.setdefault("evaluator", {})
    if not evaluator.get("parallel_evaluations"):
        evaluator["parallel_evaluations"] = os.cpu_count() or 1
    backend = resolve_backend(llm)
    llm_section = {k: v for k, v in d.get("llm", {}).items() if k != "models"}
    llm_section.update({k: llm[k] for k in ("temperature", "max_tokens") if llm.get(k) is not None})
    llm_section.update(retries=0, retry_delay=0)
    llm_section["models"] = llm_models(llm, backend)
    llm_section["evaluator_models"] = []
    if llm.get("api_base"):
        llm_section["api_base"] = llm["api_base"]
    d["llm"] = llm_section
    config = config_from_dict(d)
    for model in config.llm.models:
        model.system_message = system_message
    return config
