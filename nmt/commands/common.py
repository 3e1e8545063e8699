"""What several commands share: rebuilding a model from a checkpoint."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from nmt.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint
from nmt.config import ConfigError, TrainConfig, train_config_from_dict
from nmt.evaluation import TextPipeline
from nmt.models.registry import VocabSizes, build_model
from nmt.models.seq2seq import Seq2Seq


@dataclass
class LoadedModel:
    model: Seq2Seq
    pipeline: TextPipeline
    train_config: TrainConfig
    path: Path


def vocab_sizes(pipeline: TextPipeline) -> VocabSizes:
    return VocabSizes(
        src=len(pipeline.src_vocab),
        tgt=len(pipeline.tgt_vocab),
        src_pad=pipeline.src_vocab.pad_idx,
        tgt_pad=pipeline.tgt_vocab.pad_idx,
    )


def load_model(path: str | Path, device: torch.device) -> LoadedModel:
    """Model, tokenizers and vocabularies from a checkpoint file (or run dir)."""
    resolved = resolve_checkpoint(path)
    data = load_checkpoint(resolved)
    try:
        train_cfg = train_config_from_dict(data["config"])
        pipeline = TextPipeline.from_state(data)
        model = build_model(train_cfg.model, vocab_sizes(pipeline))
        model.load_state_dict(data["model"])
    except (KeyError, ConfigError, RuntimeError) as exc:
        raise CheckpointError(f"{path}: checkpoint does not match this nmt ({exc})") from None
    model.to(device).eval()
    return LoadedModel(model=model, pipeline=pipeline, train_config=train_cfg, path=resolved)
