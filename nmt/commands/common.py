"""What several commands share: rebuilding a model from a checkpoint,
evaluating it on a split and writing the report (``nmt train`` on its test
splits, ``nmt evaluate`` on the split or files it is given)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint
from nmt.config import (
    ConfigError,
    DataSource,
    DecodingConfig,
    ModelUseConfig,
    TrainConfig,
    to_dataclass,
    to_plain,
    train_config_from_dict,
)
from nmt.data.corpus import ParallelText, available_test_splits, load_split
from nmt.data.pipeline import TextPipeline
from nmt.evaluation import EvalReport, evaluate
from nmt.files import write_output
from nmt.models.ensemble import Ensemble
from nmt.models.interface import DecodingModel
from nmt.models.registry import build_model
from nmt.models.seq2seq import Seq2Seq

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model ready to translate.  For an ensemble, ``model`` is an
    :class:`Ensemble` (a DecodingModel, as a Seq2Seq is) and ``path``,
    ``train_config`` are its first member's; ``paths`` lists them all."""

    model: DecodingModel
    pipeline: TextPipeline
    train_config: TrainConfig
    path: Path
    paths: list[Path] = field(default_factory=list)
    recipe_decoding: dict[str, Any] | None = None  # the checkpoint's "decoding" (None: older)


@dataclass
class _Member:
    """One checkpoint's model and what it was trained with."""

    model: Seq2Seq
    pipeline: TextPipeline
    train_config: TrainConfig
    path: Path
    recipe_decoding: dict[str, Any] | None = None  # the checkpoint's "decoding" (None: older)


def _load_member(path: str | Path, device: torch.device) -> _Member:
    resolved = resolve_checkpoint(path)
    data = load_checkpoint(resolved)
    try:
        train_cfg = train_config_from_dict(data["config"])
        pipeline = TextPipeline.from_state(data)
        model = build_model(train_cfg.model, pipeline.vocab_sizes)
        model.load_state_dict(data["model"])
    except (KeyError, ConfigError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: checkpoint does not match this nmt ({exc})") from None
    model.to(device).eval()
    return _Member(model, pipeline, train_cfg, resolved, data.get("decoding"))


def load_one(path: str | Path, device: torch.device) -> LoadedModel:
    """Model, tokenizers and vocabularies from a checkpoint file (or run dir)."""
    member = _load_member(path, device)
    return LoadedModel(
        member.model,
        member.pipeline,
        member.train_config,
        member.path,
        [member.path],
        member.recipe_decoding,
    )


def load_model(paths: str | Path | list[str], device: torch.device) -> LoadedModel:
    """One checkpoint, or a list of them as an :class:`Ensemble` (one entry:
    that model alone).  Ensemble members must share their vocabularies."""
    if isinstance(paths, list) and len(paths) == 1:
        paths = paths[0]
    if not isinstance(paths, list):
        return load_one(paths, device)
    members = [_load_member(p, device) for p in paths]
    first = members[0]
    for other in members[1:]:
        _check_same_vocabularies(first, other)
    ensemble = Ensemble([m.model for m in members]).eval()
    files = [m.path for m in members]
    return LoadedModel(
        ensemble, first.pipeline, first.train_config, first.path, files, first.recipe_decoding
    )


def choose_decoding(cfg: ModelUseConfig, loaded: LoadedModel) -> tuple[DecodingConfig, str]:
    """The decoding a command uses and where it came from (see ModelUseConfig):
    the command line's preset, or the checkpoint's recipe (an ensemble: its
    first member's; a checkpoint older than the stored recipe: today's
    default) with the command line's ``decoding.KEY=VALUE`` on top."""
    if cfg.decoding_keys is None:
        return cfg.decoding, "command line"
    if loaded.recipe_decoding is None:
        base, source = to_plain(DecodingConfig()), "default (the checkpoint stores no recipe)"
    else:
        base, source = dict(loaded.recipe_decoding), "checkpoint (the training recipe)"
    if len(loaded.paths) > 1 and loaded.recipe_decoding is not None:
        source = "checkpoint (the first ensemble member's training recipe)"
    if cfg.decoding_keys:
        given = ", ".join(f"decoding.{key}" for key in cfg.decoding_keys)
        source += f", with {given} from the command line"
    return to_dataclass(base | cfg.decoding_keys, DecodingConfig), source


def _check_same_vocabularies(first: _Member, other: _Member) -> None:
    """Refuse an ensemble whose members read or write different tokens."""
    mine, theirs = first.pipeline.state(), other.pipeline.state()
    for side in ("tgt", "src"):
        for part in (f"{side}_vocab", f"{side}_tokenizer"):
            if mine[part] != theirs[part]:
                raise CheckpointError(
                    f"ensemble: {other.path} has another {side} "
                    f"{part.split('_')[1]} than {first.path}; members must share them"
                )


def evaluate_and_write(
    loaded: LoadedModel,
    data: ParallelText,
    decoding: DecodingConfig,
    device: torch.device,
    target: Path,
    extra: dict[str, Any],
    *,
    progress: bool = False,
    prefix: str = "",
) -> EvalReport:
    """Evaluate the model on ``data``; write its hypotheses and its report (the
    summary plus ``extra``) to ``target`` (see :func:`write_report`)."""
    report = evaluate(
        loaded.model, loaded.pipeline, data.src, data.tgt, decoding, device, progress=progress
    )
    write_report(target, report.summary() | extra, report.hypotheses, prefix)
    return report


def report_files(target: Path, prefix: str = "") -> tuple[Path, Path]:
    """``<prefix>hypotheses.txt`` and ``<prefix>report.json`` in ``target``."""
    return target / f"{prefix}hypotheses.txt", target / f"{prefix}report.json"


def write_report(
    target: Path, report: dict[str, Any], hypotheses: list[str], prefix: str = ""
) -> None:
    """The hypotheses (one line per input line) and the report in ``target``
    (see :func:`report_files`), written as nmt.files says."""
    hyps, summary = report_files(target, prefix)
    write_output(hyps, "".join(h + "\n" for h in hypotheses), what="hypotheses")
    write_output(summary, json.dumps(report, indent=2) + "\n", what="report")


def _test_splits(cfg: TrainConfig) -> list[str]:
    """The test splits ``trainer.test_split`` names for this run's data."""
    if cfg.trainer.test_split is None:
        return []
    if cfg.data.source == DataSource.files:
        return ["test"] if cfg.data.test_src else []
    if cfg.trainer.test_split == "all":
        return available_test_splits(cfg.data)
    return [cfg.trainer.test_split]


def evaluate_test_splits(cfg: TrainConfig, out_dir: Path, device: torch.device) -> dict[str, Any]:
    """Evaluate ``best.pt`` on the test split(s); reports go to ``out_dir/test/<split>/``."""
    splits = _test_splits(cfg)
    best = out_dir / "checkpoints" / "best.pt"
    if not splits or not best.is_file():
        return {}
    loaded = load_model(best, device)
    results = {}
    for split in splits:
        data = load_split(cfg.data, split)
        target = out_dir / "test" / split
        extra = {"split": split, "checkpoint": str(best)}
        report = evaluate_and_write(loaded, data, cfg.decoding, device, target, extra)
        results[split] = report.summary()
        log.info(
            "test %s: bleu %.2f ppl %.2f (%s)", split, report.bleu, report.ppl, report.signature
        )
    return results
