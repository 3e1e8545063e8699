"""Between a composed config and the typed dataclasses: conversion with a
check for unknown keys, and plain data for a checkpoint and back.

Library code receives the dataclasses (never a DictConfig) and treats them
as read-only.
"""

from __future__ import annotations

import dataclasses
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from nmt.config.errors import ConfigError
from nmt.config.model import MODEL_CONFIGS, ModelConfig
from nmt.config.roots import TrainConfig

T = TypeVar("T")


def _unknown_keys(node: Any, prefix: str = "") -> list[str]:
    """Keys of a merged config that its dataclass does not declare.

    ``+trainer.max_epoch=3`` opens the node for a new key; OmegaConf would then
    drop the key without a word when it builds the dataclass.
    """
    kind = OmegaConf.get_type(node)
    names = {f.name for f in dataclasses.fields(kind)} if dataclasses.is_dataclass(kind) else None
    unknown = []
    for key in node:
        if names is not None and key not in names:
            unknown.append(f"{prefix}{key}")
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            unknown += _unknown_keys(child, f"{prefix}{key}.")
    return unknown


def to_dataclass(cfg: Any, schema: type[T]) -> T:
    """Turn a composed DictConfig (or plain dict) into the validated dataclass."""
    node = OmegaConf.merge(OmegaConf.structured(schema), cfg)
    unknown = _unknown_keys(node)
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(unknown)} (check the spelling)")
    obj = OmegaConf.to_object(node)
    if isinstance(obj, dict):  # pragma: no cover - defensive
        raise ConfigError(f"config did not convert to {schema.__name__}")
    return obj  # type: ignore[return-value]


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a model config stored as plain data (inside a checkpoint)."""
    arch = data.get("arch")
    if arch not in MODEL_CONFIGS:
        raise ConfigError(
            f"model.arch={arch!r} is not known; known: {', '.join(sorted(MODEL_CONFIGS))}"
        )
    return to_dataclass(data, MODEL_CONFIGS[arch])


def train_config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig stored as plain data (inside a checkpoint)."""
    data = dict(data)
    model = model_config_from_dict(data.pop("model"))
    cfg = to_dataclass(data | {"model": dataclasses.asdict(model)}, TrainConfig)
    cfg.model = model
    return cfg


def to_plain(obj: Any) -> Any:
    """A dataclass config as nested dicts of str/int/float/bool/None/list."""
    return OmegaConf.to_container(OmegaConf.structured(obj), enum_to_str=True)
