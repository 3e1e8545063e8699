"""Every command, group option and experiment config composes and validates.

Compose with Hydra's compose API (as the CLI does, without running a job),
convert with nmt.config.to_dataclass, and check that typos and impossible
values fail.  The group options and experiments are read from the YAML files
on disk, so a new file is covered without touching this test.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections.abc import Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import yaml
from hydra import compose, initialize_config_module
from hydra.core.global_hydra import GlobalHydra
from hydra.errors import ConfigCompositionException
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

import nmt.configs
from nmt.config import (
    MODEL_CONFIGS,
    ConfigError,
    DataCommandConfig,
    EvaluateConfig,
    ModelConfig,
    RNNConfig,
    ServeConfig,
    TrainConfig,
    TranslateConfig,
    register_configs,
    to_dataclass,
    to_plain,
    train_config_from_dict,
)

CONFIG_DIR = Path(nmt.configs.__file__).parent
SCHEMAS: dict[str, type] = {
    "train": TrainConfig,
    "evaluate": EvaluateConfig,
    "translate": TranslateConfig,
    "data": DataCommandConfig,
    "serve": ServeConfig,
}
# overrides a command needs before it validates (its MISSING keys)
REQUIRED: dict[str, list[str]] = {
    "evaluate": ["checkpoint=x"],
    "translate": ["checkpoint=x"],
    "serve": ["checkpoint=x"],
}
FILES_DATA = [
    f"data.{split}_{side}=/nowhere/{split}.{side}"
    for split in ("train", "val", "test")
    for side in ("src", "tgt")
]


def load_yaml(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8")) or {}


def recipe_values(experiment: str) -> dict[str, Any]:
    """The group values an experiment file sets, with those of the recipes it
    builds on (plain names in its defaults list), the later ones winning."""
    data = load_yaml(CONFIG_DIR / "experiment" / f"{experiment}.yaml")
    merged: dict[str, Any] = {}
    for base in (d for d in data.get("defaults", []) if isinstance(d, str) and d != "_self_"):
        for group, values in recipe_values(base).items():
            merged[group] = merged.get(group, {}) | values
    for group, values in data.items():
        if isinstance(values, dict) and group not in ("defaults", "hydra"):
            merged[group] = merged.get(group, {}) | values
    return merged


def set_by_command(command: str, group: str) -> dict[str, Any]:
    """Values of ``group`` that the command's file, or the recipe it selects by
    default (train.yaml's ``experiment``), sets over the group's option."""
    cfg = load_yaml(CONFIG_DIR / f"{command}.yaml")
    values = dict(cfg.get(group) or {})
    for entry in cfg.get("defaults", []):
        if isinstance(entry, dict) and entry.get("experiment"):
            values |= recipe_values(entry["experiment"]).get(group, {})
    return values


def command_groups(command: str) -> list[str]:
    """Config groups a command's defaults list selects (``group: option`` entries)."""
    groups = []
    for entry in load_yaml(CONFIG_DIR / f"{command}.yaml").get("defaults", []):
        if isinstance(entry, dict):
            key = next(iter(entry))
            if not key.startswith("override ") and "/" not in key:
                groups.append(key)
    return groups


def group_options() -> list[tuple[str, str]]:
    pairs = []
    for folder in sorted(p for p in CONFIG_DIR.iterdir() if p.is_dir()):
        if folder.name in ("experiment", "tune") or folder.name.startswith(("_", ".")):
            continue
        pairs += [(folder.name, f.stem) for f in sorted(folder.glob("*.yaml"))]
    return pairs


EXPERIMENTS = sorted(p.stem for p in (CONFIG_DIR / "experiment").glob("*.yaml"))
GROUP_OPTIONS = group_options()


@pytest.fixture(autouse=True)
def hydra_configs() -> Iterator[None]:
    register_configs()
    with initialize_config_module(config_module="nmt.configs", version_base="1.3"):
        yield


def compose_command(command: str, overrides: list[str] | None = None) -> DictConfig:
    return compose(config_name=command, overrides=REQUIRED.get(command, []) + (overrides or []))


def typed(command: str, overrides: list[str] | None = None) -> Any:
    return to_dataclass(compose_command(command, overrides), SCHEMAS[command])


def extra_for(group: str, option: str) -> list[str]:
    if (group, option) == ("data", "hf"):
        return ["data.hf_path=some/saved_dataset"]
    return FILES_DATA if (group, option) == ("data", "files") else []


def same_value(actual: Any, expected: Any) -> bool:
    if isinstance(actual, Enum):
        actual = actual.value
    if isinstance(expected, float) or isinstance(actual, float):
        return expected is not None and math.isclose(actual, expected)
    return actual == expected


# ------------------------------------------------------------------- the files


def test_the_groups_and_files_exist() -> None:
    assert {"train", "evaluate", "translate", "data"} <= {p.stem for p in CONFIG_DIR.glob("*.yaml")}
    groups = {g for g, _ in GROUP_OPTIONS}
    assert {
        "data",
        "tokenizer",
        "vocab",
        "model",
        "optimizer",
        "scheduler",
        "trainer",
        "decoding",
    } <= groups
    assert EXPERIMENTS, "no experiment configs found"


def test_no_target_keys_in_yaml() -> None:
    """A config inside a checkpoint must never name code to import."""
    for path in CONFIG_DIR.rglob("*.yaml"):
        assert "_target_" not in path.read_text(encoding="utf-8"), path


# ------------------------------------------------------------------ commands


@pytest.mark.parametrize("command", sorted(SCHEMAS))
def test_command_composes_and_validates(command: str) -> None:
    cfg = typed(command)
    assert isinstance(cfg, SCHEMAS[command])
    if command == "train":
        assert isinstance(cfg.model, ModelConfig)
        assert isinstance(cfg.model, MODEL_CONFIGS[cfg.model.arch])


@pytest.mark.parametrize("command", ["evaluate", "translate", "serve"])
def test_checkpoint_is_required(command: str) -> None:
    cfg = compose(config_name=command)
    with pytest.raises(OmegaConfBaseException, match="checkpoint"):
        to_dataclass(cfg, SCHEMAS[command])


@pytest.mark.parametrize("group, option", GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_every_group_option(group: str, option: str) -> None:
    """Each option composes into every command that uses its group, and the
    values in its file reach the dataclass (unless the command file sets them)."""
    commands = [c for c in SCHEMAS if group in command_groups(c)]
    assert commands, f"no command uses the {group} group"
    values = {
        k: v
        for k, v in load_yaml(CONFIG_DIR / group / f"{option}.yaml").items()
        if k != "defaults" and v != "???"
    }
    for command in commands:
        cfg = typed(command, [f"{group}={option}", *extra_for(group, option)])
        section = getattr(cfg, group)
        overridden = {o.split("=")[0].split(".")[-1] for o in extra_for(group, option)}
        for key, expected in values.items():
            if key in set_by_command(command, group) or key in overridden:
                continue
            actual = getattr(section, key)
            assert same_value(actual, expected), f"{command}: {group}.{key}={actual!r}"


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment(experiment: str) -> None:
    path = CONFIG_DIR / "experiment" / f"{experiment}.yaml"
    assert path.read_text(encoding="utf-8").startswith("# @package _global_")
    cfg = typed("train", [f"experiment={experiment}"])
    assert isinstance(cfg, TrainConfig)
    # the experiment's own values win over the groups' defaults
    for group, values in load_yaml(path).items():
        if group in ("defaults", "hydra") or not isinstance(values, dict):
            continue  # hydra: a sweep's settings (test_every_sweep_job_composes)
        for key, expected in values.items():
            actual = getattr(getattr(cfg, group), key)
            assert same_value(actual, expected), f"{experiment}: {group}.{key}={actual!r}"
    if "name" in load_yaml(path):
        assert cfg.name == load_yaml(path)["name"]


SWEEPS = [e for e in EXPERIMENTS if "hydra" in load_yaml(CONFIG_DIR / "experiment" / f"{e}.yaml")]


def test_sweep_experiments_exist() -> None:
    assert "luong_sweep" in SWEEPS


@pytest.mark.parametrize("experiment", SWEEPS)
def test_every_sweep_job_composes(experiment: str) -> None:
    """Each job of a sweep experiment (the product of its sweeper params) is a
    valid training config, and the sweep runs in MULTIRUN mode by itself."""
    hydra_cfg = load_yaml(CONFIG_DIR / "experiment" / f"{experiment}.yaml")["hydra"]
    assert hydra_cfg["mode"] == "MULTIRUN"
    params = hydra_cfg["sweeper"]["params"]
    choices = [
        [f"{key}={v.strip()}" for v in str(values).split(",")] for key, values in params.items()
    ]
    jobs = list(itertools.product(*choices))
    assert len(jobs) >= 2
    seen = set()
    for job in jobs:
        cfg = typed("train", [f"experiment={experiment}", *job])
        seen.add(json.dumps(to_plain(cfg), sort_keys=True, default=str))
    assert len(seen) == len(jobs)  # every job trains something different


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiment_round_trips_through_a_checkpoint(experiment: str) -> None:
    cfg = typed("train", [f"experiment={experiment}"])
    assert train_config_from_dict(to_plain(cfg)) == cfg


# ------------------------------------------------------------------ failures


@pytest.mark.parametrize(
    "override",
    [
        "trainer.max_epoch=3",
        "+trainer.max_epoch=3",
        "model.hidden=5",
        "optimiser.lr=1",
        "+model.hidden=5",
    ],
)
def test_misspelled_key_fails(override: str) -> None:
    if override.startswith("+"):
        # "+" opens the node, so Hydra composes it; the conversion must refuse it
        cfg = compose_command("train", [override])
        with pytest.raises(ConfigError, match=override[1:].split("=")[0].replace(".", r"\.")):
            to_dataclass(cfg, TrainConfig)
    else:
        with pytest.raises(ConfigCompositionException):
            compose_command("train", [override])


@pytest.mark.parametrize("command", sorted(SCHEMAS))
def test_appended_unknown_key_fails_in_every_command(command: str) -> None:
    cfg = compose_command(command, ["+no_such_key=1"])
    with pytest.raises(ConfigError, match="no_such_key"):
        to_dataclass(cfg, SCHEMAS[command])


@pytest.mark.parametrize(
    "override",
    [
        "tokenizer.kind=foo",
        "model.cell=transformer",
        "optimizer.name=adamax",
        "trainer.device=tpu",
        "trainer.max_epochs=many",
    ],
)
def test_bad_value_fails(override: str) -> None:
    with pytest.raises(ConfigCompositionException):
        compose_command("train", [override])


@pytest.mark.parametrize("option", ["nope", "Adam"])
def test_unknown_group_option_fails(option: str) -> None:
    with pytest.raises(ConfigCompositionException):
        compose_command("train", [f"optimizer={option}"])


@pytest.mark.parametrize(
    "overrides, key",
    [
        (["data.src_lang=en", "data.tgt_lang=en"], "data.src_lang"),
        (["data.src_lang=xx"], "data.src_lang"),
        (["trainer.teacher_forcing=1.5"], "trainer.teacher_forcing"),
        (["trainer.teacher_forcing=-0.1"], "trainer.teacher_forcing"),
        (["trainer.max_epochs=0"], "trainer.max_epochs"),
        (["trainer.clip_grad_norm=0"], "trainer.clip_grad_norm"),
        (["model.dropout=1.0"], "model.dropout"),
        (
            ["model.tie_embeddings=true", "model.emb_dim=8", "model.hidden_dim=16"],
            "model.tie_embeddings",
        ),
        (["optimizer.lr=0"], "optimizer.lr"),
        (["vocab.min_freq=0"], "vocab.min_freq"),
        (["decoding.max_len=0"], "decoding.max_len"),
        (["decoding.length_penalty=-0.5"], "decoding.length_penalty"),
        (["decoding.length_penalty=1e300"], "decoding.length_penalty"),
        (["data=files"] + FILES_DATA[:3], "data.val_tgt"),  # val_tgt missing
    ],
)
def test_cross_key_checks_raise_config_error(overrides: list[str], key: str) -> None:
    cfg = compose_command("train", overrides)
    with pytest.raises((ConfigError, OmegaConfBaseException), match=key.replace(".", r"\.")) as err:
        to_dataclass(cfg, TrainConfig)
    if overrides[0] != "data=files":  # a ??? value fails in OmegaConf, before the checks
        assert err.type is ConfigError


def test_evaluate_src_and_ref_go_together() -> None:
    with pytest.raises(ConfigError, match="src"):
        typed("evaluate", ["src=a.txt"])
    cfg = typed("evaluate", ["src=a.txt", "ref=b.txt"])
    assert (cfg.src, cfg.ref) == ("a.txt", "b.txt")


# ------------------------------------------------------------------ round trip


def test_train_config_round_trips_through_plain_data() -> None:
    overrides = ["model.emb_dim=64", "model.hidden_dim=64", "optimizer=sgd", "tokenizer.lower=true"]
    cfg = typed("train", overrides)
    plain = to_plain(cfg)
    assert isinstance(plain, dict) and isinstance(plain["model"], dict)
    assert plain["tokenizer"]["kind"] == cfg.tokenizer.kind.value  # enums become strings
    restored = train_config_from_dict(plain)
    assert restored == cfg
    assert type(restored.model) is type(cfg.model)
    assert to_plain(restored) == plain


@pytest.mark.parametrize("arch", sorted(MODEL_CONFIGS))
def test_every_arch_round_trips(arch: str) -> None:
    options = [o for g, o in GROUP_OPTIONS if g == "model"]
    if arch not in options:
        pytest.fail(f"model arch {arch!r} has no configs/model/{arch}.yaml")
    cfg = typed("train", [f"model={arch}"])
    assert cfg.model.arch == arch
    assert train_config_from_dict(to_plain(cfg)) == cfg


def test_overrides_do_not_leak_between_compositions() -> None:
    changed = typed("train", ["trainer.batch_size=7"])
    fresh = typed("train")
    assert changed.trainer.batch_size == 7
    assert fresh.trainer.batch_size != 7
    assert dataclasses.replace(fresh.trainer, batch_size=7) == changed.trainer


# ------------------------------------------------------------ defaults in one place

# the key that says which option a group file is (it may equal the default)
IDENTITY_KEYS = {"source", "kind", "name", "strategy"}
GROUP_SCHEMAS = {
    f.name: f.default_factory
    for f in dataclasses.fields(TrainConfig)
    if f.default_factory is not dataclasses.MISSING
}


def schema_defaults(group: str, option: str) -> dict[str, Any]:
    """The dataclass defaults behind configs/<group>/<option>.yaml, as plain data."""
    schema = MODEL_CONFIGS[option] if group == "model" else GROUP_SCHEMAS[group]
    return to_plain(schema())


def selected_option(experiment: str, group: str) -> str:
    """The option of ``group`` a recipe trains with: its own override, else that
    of a recipe it builds on, else train.yaml's choice."""
    for entry in reversed(load_yaml(CONFIG_DIR / "experiment" / f"{experiment}.yaml")["defaults"]):
        if isinstance(entry, dict) and f"override /{group}" in entry:
            return entry[f"override /{group}"]
        if isinstance(entry, str) and entry != "_self_":
            return selected_option(entry, group)
    choices = [e for e in load_yaml(CONFIG_DIR / "train.yaml")["defaults"] if isinstance(e, dict)]
    return next(e[group] for e in choices if group in e)


def value_below(experiment: str, group: str, key: str) -> Any:
    """What ``group.key`` would be if the recipe's own file did not set it."""
    for entry in reversed(load_yaml(CONFIG_DIR / "experiment" / f"{experiment}.yaml")["defaults"]):
        if isinstance(entry, str) and entry != "_self_":
            inherited = recipe_values(entry).get(group, {})
            if key in inherited:
                return inherited[key]
    option = selected_option(experiment, group)
    file_values = load_yaml(CONFIG_DIR / group / f"{option}.yaml")
    return file_values[key] if key in file_values else schema_defaults(group, option)[key]


@pytest.mark.parametrize("group, option", GROUP_OPTIONS, ids=[f"{g}={o}" for g, o in GROUP_OPTIONS])
def test_group_files_set_only_what_differs_from_the_dataclass(group: str, option: str) -> None:
    """The dataclasses hold the defaults; a group file repeats none of them
    (apart from the key that names the option, such as optimizer.name)."""
    defaults = schema_defaults(group, option)
    values = load_yaml(CONFIG_DIR / group / f"{option}.yaml")
    repeated = [
        key
        for key, value in values.items()
        if key != "defaults" and key not in IDENTITY_KEYS and defaults[key] == value
    ]
    assert not repeated, f"{group}/{option}.yaml repeats the dataclass defaults of {repeated}"


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_experiments_set_only_their_differences(experiment: str) -> None:
    """A recipe file sets only values that differ from what it builds on (the
    recipes it names, its group options, the dataclasses)."""
    data = load_yaml(CONFIG_DIR / "experiment" / f"{experiment}.yaml")
    assert "defaults" in data, f"{experiment}: no defaults list"
    repeated = [
        f"{group}.{key}"
        for group, values in data.items()
        if isinstance(values, dict) and group not in ("defaults", "hydra")
        for key, value in values.items()
        if value_below(experiment, group, key) == value
    ]
    assert not repeated, f"experiment/{experiment}.yaml repeats {repeated}"


TUNE_VARIANTS = sorted(p.stem for p in (CONFIG_DIR / "tune").glob("*.yaml"))


@pytest.mark.parametrize("variant", TUNE_VARIANTS)
def test_tuning_variants_compose_onto_a_recipe(variant: str) -> None:
    """Each +tune= variant of the sweeps changes the recipe it is added to
    (only `word`, the recipe as it is, changes nothing)."""
    base = ["experiment=luong_best"]
    before = to_plain(to_dataclass(compose("train", overrides=base), TrainConfig))
    after = to_plain(
        to_dataclass(compose("train", overrides=[*base, f"+tune={variant}"]), TrainConfig)
    )
    changed = [key for key in before if before[key] != after[key]]
    if variant == "word":
        assert not changed, f"+tune=word changed {changed}"
    else:
        assert changed, f"+tune={variant} changed nothing"


def test_default_recipe_is_cpu_fast() -> None:
    """`nmt train` with no overrides trains experiment=cpu_fast (README promise)."""
    default = to_plain(to_dataclass(compose("train"), TrainConfig))
    fast = to_plain(to_dataclass(compose("train", overrides=["experiment=cpu_fast"]), TrainConfig))
    default.pop("name")
    fast.pop("name")
    assert default == fast

    assert to_dataclass(compose("train"), TrainConfig).name == "default"


# ------------------------------------------------------------ schemas are no options


def test_group_options_are_the_yaml_files() -> None:
    """The schemas registered in the ConfigStore are not options of any group:
    each group offers exactly its YAML files."""
    loader = GlobalHydra.instance().config_loader()
    groups = {g for g, _ in GROUP_OPTIONS} | {"experiment"}
    for group in sorted(groups):
        on_disk = sorted(p.stem for p in (CONFIG_DIR / group).glob("*.yaml"))
        assert sorted(loader.get_group_options(group)) == on_disk, group


def test_a_bad_model_choice_lists_only_the_real_options() -> None:
    with pytest.raises(ConfigCompositionException) as err:
        compose_command("train", ["model=lstm"])
    message = str(err.value)
    assert "model/lstm" in message
    # the options follow this line, one per tab-indented line
    listed = message.split("Available options in 'model':")[1].split("Config search path")[0]
    assert sorted(listed.split()) == sorted(MODEL_CONFIGS)


@pytest.mark.parametrize(
    "arch", sorted(a for a, cls in MODEL_CONFIGS.items() if issubclass(cls, RNNConfig))
)
def test_every_rnn_arch_checks_tied_embedding_sizes(arch: str) -> None:
    with pytest.raises(ConfigError, match=r"model\.tie_embeddings=true .*emb_dim == "):
        MODEL_CONFIGS[arch](tie_embeddings=True, emb_dim=8, hidden_dim=16)
    assert MODEL_CONFIGS[arch](tie_embeddings=True, emb_dim=16, hidden_dim=16).tie_embeddings


def test_a_tied_model_resizes_with_hidden_dim_alone() -> None:
    """model/luong.yaml ties: the embedding follows hidden_dim unless set; a
    contradiction set on the command line is still an error naming both keys."""
    assert typed("train", ["model.hidden_dim=512"]).model.emb_dim == 512
    untied = typed("train", ["model.hidden_dim=512", "model.tie_embeddings=false"]).model
    assert untied.emb_dim == 256
    with pytest.raises(ConfigError, match=r"model\.emb_dim == model\.hidden_dim"):
        typed("train", ["model.hidden_dim=512", "model.emb_dim=128"])


def test_sampling_n_best_is_capped_like_a_beam() -> None:
    with pytest.raises(ConfigError, match=r"decoding\.n_best=100000 samples is above"):
        typed("translate", ["checkpoint=x.pt", "decoding=sample", "decoding.n_best=100000"])
    assert typed("translate", ["checkpoint=x.pt", "decoding=sample", "decoding.n_best=64"])


def test_model_commands_name_no_decoding_by_default() -> None:
    """No preset composed unless named: the checkpoint's recipe decides (see ModelUseConfig)."""
    for command in ("evaluate", "translate", "serve"):
        assert compose_command(command, ["checkpoint=x.pt"]).decoding.strategy == "greedy"
        chosen = compose_command(command, ["checkpoint=x.pt", "decoding=beam"]).decoding
        assert chosen.strategy == "beam" and chosen.length_penalty == 0.6
