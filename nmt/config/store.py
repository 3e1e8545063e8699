"""Registration of the schemas with Hydra's ConfigStore (called by the CLI).

Each YAML file names its schema first in its defaults list and then sets only
the values that differ from the dataclass.  The schemas are stored at the top
level under names ending in ``_schema``, never inside a config group, so that
``model=...`` lists only the YAML options a user can pick.
"""

from __future__ import annotations

from nmt.config.average import AverageConfig
from nmt.config.model import MODEL_CONFIGS
from nmt.config.roots import DataCommandConfig, EvaluateConfig, TrainConfig, TranslateConfig
from nmt.config.serve import ServeConfig

# stored name -> root schema of a command (the first entry of <command>.yaml)
COMMAND_SCHEMAS: dict[str, type] = {
    "train_schema": TrainConfig,
    "evaluate_schema": EvaluateConfig,
    "translate_schema": TranslateConfig,
    "data_schema": DataCommandConfig,
    "serve_schema": ServeConfig,
    "average_schema": AverageConfig,
}


def model_schema_name(arch: str) -> str:
    """Stored name of an architecture's schema; configs/model/<arch>.yaml extends
    it with ``- /model_<arch>_schema@_here_``."""
    return f"model_{arch}_schema"


def register_configs() -> None:
    """Register every schema with Hydra's ConfigStore."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    for name, node in COMMAND_SCHEMAS.items():
        cs.store(name=name, node=node)
    for arch, cls in MODEL_CONFIGS.items():
        cs.store(name=model_schema_name(arch), node=cls)
