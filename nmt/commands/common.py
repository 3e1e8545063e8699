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
    TrainConfig,
    train_config_from_dict,
)
from nmt.data.corpus import ParallelText, available_test_splits, load_split
from nmt.data.pipeline import TextPipeline
from nmt.evaluation import EvalReport, evaluate
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


@dataclass
class _Member:
    """One checkpoint's model and what it was trained with."""

    model: Seq2Seq
    pipeline: TextPipeline
    train_config: TrainConfig
    path: Path


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
    return _Member(model, pipeline, train_cfg, resolved)


def load_one(path: str | Path, device: torch.device) -> LoadedModel:
    """Model, tokenizers and vocabularies from a checkpoint file (or run dir)."""
    member = _load_member(path, device)
    return LoadedModel(
        member.model, member.pipeline, member.train_config, member.path, [member.path]
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
    return LoadedModel(
        ensemble, first.pipeline, first.train_config, first.path, [m.path for m in members]
    )


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
) -> EvalReport:
    """Evaluate the model on ``data``; write its hypotheses and its report (the
    summary plus ``extra``) to ``target``."""
    report = evaluate(
        loaded.model, loaded.pipeline, data.src, data.tgt, decoding, device, progress=progress
    )
    write_report(target, report.summary() | extra, report.hypotheses)
    return report


def write_report(target: Path, report: dict[str, Any], hypotheses: list[str]) -> None:
    """``hypotheses.txt`` (one line per input line) and ``report.json`` in ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    (target / "hypotheses.txt").write_text("".join(h + "\n" for h in hypotheses), encoding="utf-8")
    (target / "report.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")


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
