"""Write a tiny checkpoint the way `nmt train` does, without training through the CLI.

Imported by the translate CLI and benchmark tests (pytest puts this folder on
``sys.path``); the models come from conftest fixtures.
"""

from __future__ import annotations

from pathlib import Path

from nmt.checkpoint import save_checkpoint
from nmt.config import (
    BahdanauConfig,
    CellType,
    DataConfig,
    DataSource,
    InitKind,
    ModelConfig,
    SutskeverConfig,
    TokenizerConfig,
    TokenizerKind,
    TrainConfig,
    to_plain,
)
from nmt.data.pipeline import TextPipeline
from nmt.models.registry import build_model
from nmt.models.seq2seq import Seq2Seq

# What conftest's make_tiny_model builds (its weights can be loaded into this).
TINY_SUTSKEVER = SutskeverConfig(
    cell=CellType.lstm,
    emb_dim=16,
    hidden_dim=32,
    num_layers=1,
    dropout=0.0,
    init=InitKind.uniform,
    init_range=0.1,
)
TINY_BAHDANAU = BahdanauConfig(emb_dim=8, hidden_dim=8, dropout=0.0)


def save_tiny_checkpoint(
    path: Path, model: Seq2Seq, model_cfg: ModelConfig, pipeline: TextPipeline, corpus_root: Path
) -> Path:
    """A checkpoint holding ``model`` and what rebuilds it (config, vocabularies)."""
    files = {
        f"{split}_{side}": str(corpus_root / f"{split}.{side}")
        for split in ("train", "val", "test")
        for side in ("src", "tgt")
    }
    cfg = TrainConfig(
        data=DataConfig(source=DataSource.files, **files),
        tokenizer=TokenizerConfig(kind=TokenizerKind.whitespace),
        model=model_cfg,
    )
    payload = {"model": model.state_dict(), "config": to_plain(cfg), **pipeline.state()}
    return save_checkpoint(payload, path)


def tiny_bahdanau(pipeline: TextPipeline, seed: int = 0) -> Seq2Seq:
    """An untrained attention model over the pipeline's vocabularies."""
    import torch

    torch.manual_seed(seed)
    sizes = pipeline.vocab_sizes
    return build_model(TINY_BAHDANAU, sizes).eval()
