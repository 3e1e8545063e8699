"""The root config of each command: what ``nmt train``, ``nmt evaluate``,
``nmt translate`` and ``nmt data`` receive, built from the group schemas."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from omegaconf import MISSING

from nmt.config.data import DataConfig, TokenizerConfig, VocabConfig
from nmt.config.decoding import DecodingConfig
from nmt.config.errors import ConfigError
from nmt.config.training import DeviceChoice, OptimizerConfig, SchedulerConfig, TrainerConfig


def check_threads(threads: int | None) -> None:
    """``threads``: torch CPU threads of a command; null = $OMP_NUM_THREADS, else
    the cores split among a parallel sweep's jobs, else torch's default."""
    if threads is not None and threads < 1:
        raise ConfigError(f"threads={threads} must be >= 1 or null")


class OutputFormat(str, Enum):
    """`nmt translate` output: text lines, or ``line<TAB>rank<TAB>score<TAB>text``."""

    plain = "plain"
    tsv = "tsv"


def checkpoint_list(value: Any) -> list[str]:
    """The checkpoint key as a list of paths: ``checkpoint=x.pt`` is one model,
    ``checkpoint=[a.pt,b.pt]`` an ensemble.  (OmegaConf has no ``str | list``
    type, so the key is ``Any`` and checked here.)"""
    paths = [value] if isinstance(value, str | os.PathLike) else value
    if not isinstance(paths, list | tuple) or not paths:
        raise ConfigError(f"checkpoint={value!r}: give a path or a list of paths [a.pt,b.pt]")
    if not all(isinstance(p, str | os.PathLike) and str(p) for p in paths):
        raise ConfigError(f"checkpoint={value!r}: every entry must be a path")
    return [str(p) for p in paths]


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    model: Any = MISSING  # a ModelConfig subclass, chosen by the model group
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    name: str = "nmt"  # a label for the run
    threads: int | None = None  # torch CPU threads; null: see check_threads

    def __post_init__(self) -> None:
        check_threads(self.threads)


@dataclass
class ModelUseConfig:
    """What every command that loads a trained model shares (evaluate,
    translate, serve): the checkpoint(s), the device, threads and decoding.

    The decoding a command uses: ``decoding`` as it is when ``decoding_keys``
    is null (``decoding=NAME`` on the command line, or a caller that builds
    this config itself); otherwise the checkpoint's recipe (today's default
    for a checkpoint that predates it) with the ``decoding_keys`` values on
    top.  ``nmt.cli`` fills ``decoding_keys`` from the command line: ``{}``
    when it names no decoding, the ``decoding.KEY=VALUE`` pairs when it names
    keys but no preset.
    """

    checkpoint: Any = MISSING  # a path, or a list of paths: an ensemble
    device: DeviceChoice = DeviceChoice.auto
    threads: int | None = None  # torch CPU threads; null: see check_threads
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    decoding_keys: dict[str, Any] | None = None  # see above; set by nmt.cli

    def __post_init__(self) -> None:
        checkpoint_list(self.checkpoint)
        check_threads(self.threads)


@dataclass
class EvaluateConfig(ModelUseConfig):
    split: str = "test_2016_flickr"  # a Multi30k split, or ignored when src/ref given
    src: str | None = None  # evaluate on files instead of a split
    ref: str | None = None
    data_root: str | None = None  # where the Multi30k files are; else as trained
    output_dir: str | None = None  # default: next to the checkpoint

    def __post_init__(self) -> None:
        super().__post_init__()
        if bool(self.src) != bool(self.ref):
            raise ConfigError("evaluate: src= and ref= go together")


@dataclass
class TranslateConfig(ModelUseConfig):
    input: str = "-"  # a file, or - for stdin
    output: str = "-"  # a file, or - for stdout
    output_format: OutputFormat = OutputFormat.plain  # tsv: line, rank, score, text
    attention_plots: str | None = None  # a folder: one PNG heatmap per sentence
    attention_plots_max: int = 20  # plots for the first N input lines only

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.attention_plots_max < 0:
            raise ConfigError("attention_plots_max must be >= 0")


@dataclass
class DataCommandConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    splits: list[str] = field(default_factory=lambda: ["train", "val", "test_2016_flickr"])
    stats: bool = True
