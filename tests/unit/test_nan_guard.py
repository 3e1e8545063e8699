"""A non-finite loss or weight stops training with one clear line, and the last
good checkpoint stays in place (a NaN model is never saved)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from nmt.checkpoint import load_checkpoint
from nmt.config import BestMetric, DeviceChoice, TrainerConfig
from nmt.data.batching import BucketBatchSampler, EpochBatches
from nmt.data.pipeline import TextPipeline
from nmt.models.seq2seq import Seq2Seq
from nmt.training.trainer import Trainer, TrainingError

CPU = torch.device("cpu")


class Poisoned(nn.Module):
    """The tiny model, but from call ``nan_from`` on its logits are NaN (a loss
    blow-up), or, with ``weights=True``, a parameter it never reads turns NaN."""

    def __init__(self, inner: Seq2Seq, nan_from: int, *, weights: bool = False) -> None:
        super().__init__()
        self.inner = inner
        self.tgt_pad = inner.tgt_pad
        self.unused = nn.Parameter(torch.zeros(3))
        self.nan_from = nan_from
        self.weights = weights
        self.calls = 0

    def forward(self, src, src_lengths, tgt_in, teacher_forcing=1.0):  # type: ignore[no-untyped-def]
        self.calls += 1
        logits = self.inner(src, src_lengths, tgt_in, teacher_forcing)
        if self.calls >= self.nan_from:
            if not self.weights:
                return logits * float("nan")
            with torch.no_grad():
                self.unused.fill_(float("nan"))
        return logits


def run(
    model: nn.Module, out_dir: Path, examples: list, pipeline: TextPipeline, **cfg: object
) -> Trainer:
    options: dict[str, object] = {
        "max_epochs": 3,
        "batch_size": 32,
        "device": DeviceChoice.cpu,
        "best_metric": BestMetric.loss,
        "bleu_every_epoch": False,
        "test_split": None,
        "log_every_steps": 1000,  # no log step before the blow-up: the save must check
        "save_every_steps": 2,
    }
    options.update(cfg)
    trainer = Trainer(
        model,  # type: ignore[arg-type]
        torch.optim.Adam(model.parameters(), lr=0.01),
        None,
        TrainerConfig(**options),  # type: ignore[arg-type]
        device=CPU,
        out_dir=out_dir,
        validate=lambda m: {"val_loss": 1.0, "val_ppl": math.e},
        checkpoint_data={},
    )
    vocab = pipeline.tgt_vocab
    sampler = BucketBatchSampler([len(s) for s, _ in examples], 32, shuffle=True, seed=0)
    source = EpochBatches(
        examples, sampler, pad_idx=vocab.pad_idx, bos_idx=vocab.bos_idx, eos_idx=vocab.eos_idx
    )
    trainer.fit(source)
    return trainer


@pytest.mark.parametrize("weights", [False, True], ids=["nan-loss", "nan-weight"])
def test_nan_stops_and_keeps_the_last_good_checkpoint(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: list, weights: bool
) -> None:
    nan_from = 6  # steps 1-5 are finite; saves at steps 2 and 4
    model = Poisoned(make_tiny_model(), nan_from, weights=weights)
    with pytest.raises(TrainingError) as info:
        run(model, tmp_path, tiny_examples, tiny_pipeline)
    message = str(info.value)
    assert len(message.splitlines()) == 1
    assert "not finite" in message and "without saving" in message
    assert str(tmp_path / "checkpoints" / "last.pt") in message

    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["trainer_state"]["step"] == 4
    assert all(torch.isfinite(t).all() for t in last["model"].values())
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["last.pt"]  # no temp file left behind, no best.pt yet


def test_a_finite_run_is_not_stopped(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: list
) -> None:
    model = Poisoned(make_tiny_model(), nan_from=10**9)
    trainer = run(model, tmp_path, tiny_examples, tiny_pipeline, max_epochs=1)
    assert trainer.state.epoch == 1
