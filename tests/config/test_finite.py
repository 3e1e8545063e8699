"""Every float key of every config dataclass refuses NaN and infinity, with a
message naming the key, both when the dataclass is built and when a command's
config is composed from overrides (issue 15, item 8)."""

from __future__ import annotations

import dataclasses
import inspect
import math
import typing
from collections.abc import Iterator
from typing import Any

import pytest
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra

import nmt.config
from nmt.config import (
    MODEL_CONFIGS,
    ConfigError,
    EvaluateConfig,
    ServeConfig,
    TrainConfig,
    TranslateConfig,
    register_configs,
    to_dataclass,
)

# the dotted prefix a dataclass's keys carry in a command's config
PREFIX = {
    "ModelConfig": "model.",
    "OptimizerConfig": "optimizer.",
    "SchedulerConfig": "scheduler.",
    "TrainerConfig": "trainer.",
    "DecodingConfig": "decoding.",
    "DataConfig": "data.",
    "TokenizerConfig": "tokenizer.",
    "VocabConfig": "vocab.",
}


def config_dataclasses() -> list[type]:
    """Every dataclass nmt.config exports, each model architecture included."""
    found = {c for _, c in inspect.getmembers(nmt.config, inspect.isclass)}
    found |= set(MODEL_CONFIGS.values())
    return sorted((c for c in found if dataclasses.is_dataclass(c)), key=lambda c: c.__name__)


def is_float_field(hint: Any) -> bool:
    """float, float | None, or list[float]."""
    if hint is float:
        return True
    args = typing.get_args(hint)
    return any(is_float_field(a) for a in args if a is not type(None))


def float_fields() -> list[tuple[type, str]]:
    pairs = []
    for cls in config_dataclasses():
        hints = typing.get_type_hints(cls)
        pairs += [(cls, f.name) for f in dataclasses.fields(cls) if is_float_field(hints[f.name])]
    return pairs


FLOAT_FIELDS = float_fields()
BAD = [math.nan, math.inf, -math.inf]


def prefix_of(cls: type) -> str:
    names = [c.__name__ for c in cls.__mro__]
    return next((PREFIX[n] for n in names if n in PREFIX), "")


def bad_value(cls: type, name: str, value: float) -> Any:
    default = getattr(cls(), name) if name != "arch" else None
    return [value, value] if isinstance(default, list) else value


def test_the_introspection_finds_the_known_float_keys() -> None:
    found = {f"{c.__name__}.{n}" for c, n in FLOAT_FIELDS}
    for key in (
        "OptimizerConfig.lr",
        "OptimizerConfig.betas",
        "TrainerConfig.clip_grad_norm",
        "DecodingConfig.length_penalty",
        "BahdanauConfig.dropout",
        "ServeConfig.batch_wait_ms",
    ):
        assert key in found


@pytest.mark.parametrize("value", BAD, ids=["nan", "inf", "-inf"])
@pytest.mark.parametrize(
    "cls, name", FLOAT_FIELDS, ids=[f"{c.__name__}.{n}" for c, n in FLOAT_FIELDS]
)
def test_every_float_field_refuses_non_finite(cls: type, name: str, value: float) -> None:
    with pytest.raises(ConfigError) as info:
        cls(**{name: bad_value(cls, name, value)})
    assert f"{prefix_of(cls)}{name}=" in str(info.value)
    assert "finite" in str(info.value)


@pytest.fixture
def hydra_configs() -> Iterator[None]:
    GlobalHydra.instance().clear()
    register_configs()
    with initialize_config_module(config_module="nmt.configs", version_base="1.3"):
        yield
    GlobalHydra.instance().clear()


@pytest.mark.parametrize(
    "command, schema, override",
    [
        ("translate", TranslateConfig, "decoding.length_penalty=nan"),
        ("translate", TranslateConfig, "decoding.length_penalty=inf"),
        ("evaluate", EvaluateConfig, "decoding.temperature=inf"),
        ("serve", ServeConfig, "batch_wait_ms=nan"),
        ("train", TrainConfig, "optimizer.lr=nan"),
        ("train", TrainConfig, "optimizer.lr=inf"),
        ("train", TrainConfig, "trainer.clip_grad_norm=nan"),
        ("train", TrainConfig, "model.dropout=nan"),
    ],
)
def test_composed_override_is_refused_naming_the_key(
    hydra_configs: None, command: str, schema: type, override: str
) -> None:
    required = [] if command == "train" else ["checkpoint=x"]
    cfg = compose(config_name=command, overrides=[*required, override])
    with pytest.raises(ConfigError, match=override.split("=")[0].replace(".", r"\.")):
        to_dataclass(cfg, schema)


@pytest.mark.parametrize(
    "cls, kwargs, key",
    [
        (nmt.config.OptimizerConfig, {"weight_decay": -0.1}, "optimizer.weight_decay"),
        (nmt.config.OptimizerConfig, {"momentum": 1.0}, "optimizer.momentum"),
        (nmt.config.OptimizerConfig, {"betas": [0.9, 1.5]}, "optimizer.betas"),
        (nmt.config.SutskeverConfig, {"init_range": 0.0}, "model.init_range"),
        (nmt.config.TrainerConfig, {"max_minutes": 0.0}, "trainer.max_minutes"),
    ],
)
def test_new_ranges(cls: type, kwargs: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        cls(**kwargs)
