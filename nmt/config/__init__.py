"""Typed schema of every config group, and its registration with Hydra.

YAML files under ``nmt/configs/`` hold the values that differ from these
dataclasses, which hold the schema and the defaults.  Closed choices are
Enums, so a misspelled key or value fails when the config is composed.
Checks that span several keys live in ``__post_init__``.

One module per concern; every public name is re-exported here, so
``from nmt.config import X`` is the import to use:

- ``data``: DataConfig, TokenizerConfig, VocabConfig (groups data, tokenizer, vocab)
- ``model``: ModelConfig, RNNConfig and one subclass per architecture (group model)
- ``training``: OptimizerConfig, SchedulerConfig, TrainerConfig
- ``decoding``: DecodingConfig
- ``roots``: TrainConfig, EvaluateConfig, TranslateConfig, DataCommandConfig
- ``serve``: ServeConfig, decoding_preset
- ``average``: AverageConfig (`nmt average`)
- ``convert``: to_dataclass, to_plain, train/model config from plain data
- ``store``: register_configs (the only module that imports Hydra)
"""

from nmt.config.average import AverageConfig
from nmt.config.convert import (
    model_config_from_dict,
    to_dataclass,
    to_plain,
    train_config_from_dict,
)
from nmt.config.data import (
    MULTI30K_LANGS,
    DataConfig,
    DataSource,
    SubwordModel,
    TokenizerConfig,
    TokenizerKind,
    VocabConfig,
)
from nmt.config.decoding import DecodingConfig, DecodingStrategy
from nmt.config.errors import ConfigError
from nmt.config.model import (
    MODEL_CONFIGS,
    TIE_ALL,
    AttentionScore,
    BahdanauConfig,
    CellType,
    ChoConfig,
    ChoContext,
    ChoSummary,
    DecoderInit,
    InitKind,
    LuongConfig,
    ModelConfig,
    NormPlace,
    Readout,
    RNNConfig,
    SutskeverConfig,
    TransformerConfig,
    embedding_dim,
)
from nmt.config.roots import (
    DataCommandConfig,
    EvaluateConfig,
    ModelUseConfig,
    OutputFormat,
    TrainConfig,
    TranslateConfig,
    checkpoint_list,
)
from nmt.config.serve import ServeConfig, decoding_preset
from nmt.config.store import register_configs
from nmt.config.training import (
    BestMetric,
    DeviceChoice,
    OptimizerConfig,
    OptimizerName,
    Precision,
    SchedulerConfig,
    SchedulerName,
    TeacherForcingSchedule,
    TrainerConfig,
)

__all__ = [
    "embedding_dim",
    "checkpoint_list",
    "AverageConfig",
    "ServeConfig",
    "decoding_preset",
    "MODEL_CONFIGS",
    "TIE_ALL",
    "MULTI30K_LANGS",
    "AttentionScore",
    "BahdanauConfig",
    "BestMetric",
    "CellType",
    "ChoConfig",
    "ChoContext",
    "ChoSummary",
    "ConfigError",
    "DataCommandConfig",
    "DataConfig",
    "DataSource",
    "SubwordModel",
    "DecoderInit",
    "DecodingConfig",
    "DecodingStrategy",
    "DeviceChoice",
    "EvaluateConfig",
    "ModelUseConfig",
    "InitKind",
    "LuongConfig",
    "ModelConfig",
    "NormPlace",
    "RNNConfig",
    "TransformerConfig",
    "OptimizerConfig",
    "OptimizerName",
    "OutputFormat",
    "Precision",
    "Readout",
    "SchedulerConfig",
    "SchedulerName",
    "SutskeverConfig",
    "TeacherForcingSchedule",
    "TokenizerConfig",
    "TokenizerKind",
    "TrainConfig",
    "TrainerConfig",
    "TranslateConfig",
    "VocabConfig",
    "model_config_from_dict",
    "register_configs",
    "to_dataclass",
    "to_plain",
    "train_config_from_dict",
]
