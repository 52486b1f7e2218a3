"""Hydra configuration helpers: where ``conf/`` is, composing it outside ``@hydra.main``."""

from __future__ import annotations

from typing import Any, Sequence

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from efe.core.errors import EfeError
from efe.core.resources import conf_dir

CONF_DIR = conf_dir()


class ConfigError(EfeError):
    """A configuration value or override that cannot be used."""


def compose(config_name: str, overrides: Sequence[str] = ()) -> DictConfig:
    """The resolved config for ``config_name`` with command-line style overrides."""
    try:
        with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
            return hydra_compose(config_name=config_name, overrides=list(overrides))
    except (HydraException, OmegaConfBaseException) as exc:
        raise ConfigError(f"bad configuration override: {exc}") from None


_MISSING = object()


def required(cfg: Any, key: str) -> Any:
    """The value at dotted ``key`` of a config, plain; a missing key is a ``ConfigError`` naming it."""
    value = OmegaConf.select(cfg, key, default=_MISSING) if OmegaConf.is_config(cfg) else _MISSING
    if value is _MISSING:
        raise ConfigError(f"the configuration has no '{key}' (conf/ gives every setting; "
                          "a config.yaml of an older run may lack it)")
    return plain_dict(value)


def conf_section(config_name: str, *keys: str) -> Any:
    """A section of the packaged ``conf/<config_name>.yaml`` as plain data, read without Hydra.

    For what needs a configured value outside a run (and inside a Hydra app, where compose fails):
    the defaults still live only in ``conf/``.
    """
    node: Any = OmegaConf.load(CONF_DIR / f"{config_name}.yaml")
    for key in keys:
        if key not in node:
            raise ConfigError(f"conf/{config_name}.yaml has no '{'.'.join(keys)}' section")
        node = node[key]
    return OmegaConf.to_container(node, resolve=True) if OmegaConf.is_config(node) else node


def dataclass_from_mapping(cls: type, mapping: Any) -> Any:
    """Build a settings dataclass from a config mapping, ignoring keys it does not know."""
    m = dict(plain_dict(mapping) or {})
    return cls(**{k: m[k] for k in cls.__dataclass_fields__ if k in m})


def plain_dict(cfg: Any) -> Any:
    if isinstance(cfg, DictConfig) or OmegaConf.is_config(cfg):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg
