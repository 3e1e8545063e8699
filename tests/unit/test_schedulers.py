"""Tests for the learning-rate schedules of nmt.training.optim.

Each schedule's learning rate, read off the optimizer after stepping it as the
trainer does, matches its formula (written out here independently).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from same_batches import SameBatches
from torch import nn

from nmt.config import (
    ConfigError,
    DeviceChoice,
    SchedulerConfig,
    SchedulerName,
    TrainerConfig,
)
from nmt.data.batching import collate
from nmt.training.optim import PerStepLR, build_scheduler, total_training_steps
from nmt.training.trainer import Trainer

LR = 0.1


def optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=LR)


def lr_of(opt: torch.optim.Optimizer) -> float:
    return float(opt.param_groups[0]["lr"])


def per_step_lrs(cfg: SchedulerConfig, steps: int, total: int | None = None) -> list[float]:
    """The lr each optimizer step 0..steps-1 uses."""
    opt = optimizer()
    sched = build_scheduler(opt, cfg, total_steps=total)
    assert isinstance(sched, PerStepLR)
    found = []
    for _ in range(steps):
        found.append(lr_of(opt))
        opt.step()
        sched.step()
    return found


def test_none_keeps_the_lr() -> None:
    assert build_scheduler(optimizer(), SchedulerConfig(name=SchedulerName.none)) is None


def test_step_multiplies_by_factor_every_step_size_epochs() -> None:
    opt = optimizer()
    sched = build_scheduler(opt, SchedulerConfig(name=SchedulerName.step, factor=0.5, step_size=2))
    assert sched is not None and not isinstance(sched, PerStepLR)
    for epoch in range(7):  # the lr of epoch e (0-based) is lr * factor ** (e // step_size)
        assert lr_of(opt) == pytest.approx(LR * 0.5 ** (epoch // 2))
        opt.step()
        sched.step()


def test_plateau_cuts_after_more_than_patience_epochs_without_improvement() -> None:
    opt = optimizer()
    cfg = SchedulerConfig(name=SchedulerName.plateau, factor=0.5, patience=1, min_lr=0.03)
    sched = build_scheduler(opt, cfg)
    assert isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau)
    # the first loss sets the best; the lr is cut once more than `patience` epochs
    # in a row bring no improvement, then the count starts again; floored at min_lr
    expected = [LR, LR, LR * 0.5, LR * 0.5, 0.03, 0.03]
    for lr in expected:
        sched.step(1.0)
        assert lr_of(opt) == pytest.approx(lr)


@pytest.mark.parametrize("warmup", [1, 4, 10])
def test_warmup_inverse_sqrt(warmup: int) -> None:
    lrs = per_step_lrs(
        SchedulerConfig(name=SchedulerName.warmup_inverse_sqrt, warmup_steps=warmup), 5 * warmup
    )
    for step, lr in enumerate(lrs):
        n = step + 1
        expected = LR * n / warmup if n <= warmup else LR * math.sqrt(warmup) / math.sqrt(n)
        assert lr == pytest.approx(expected), step
    assert max(lrs) == pytest.approx(LR)  # the peak is optimizer.lr, at step warmup - 1
    assert lrs.index(max(lrs)) == warmup - 1


@pytest.mark.parametrize("warmup", [0, 3])
def test_cosine(warmup: int) -> None:
    total, min_lr = 23, 1e-3
    cfg = SchedulerConfig(name=SchedulerName.cosine, warmup_steps=warmup, min_lr=min_lr)
    lrs = per_step_lrs(cfg, total + 5, total=total)
    for step, lr in enumerate(lrs):
        if step < warmup:
            expected = LR * (step + 1) / warmup
        else:
            progress = min(1.0, (step - warmup) / (total - warmup))
            expected = min_lr + (LR - min_lr) * (1 + math.cos(math.pi * progress)) / 2
        assert lr == pytest.approx(expected), step
    assert lrs[warmup] == pytest.approx(LR)
    middle = warmup + (total - warmup) / 2
    if middle.is_integer():
        assert lrs[int(middle)] == pytest.approx((LR + min_lr) / 2)
    assert lrs[total:] == pytest.approx([min_lr] * 5)  # stays at min_lr after the end


def test_cosine_needs_the_total() -> None:
    with pytest.raises(ValueError, match="total"):
        build_scheduler(optimizer(), SchedulerConfig(name=SchedulerName.cosine))


def test_total_training_steps() -> None:
    assert total_training_steps(None, 10, 50) == 500
    assert total_training_steps(120, 10, 50) == 120
    assert total_training_steps(10_000, 10, 50) == 500  # the epochs end the run first


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"name": SchedulerName.warmup_inverse_sqrt, "warmup_steps": 0}, "warmup_steps"),
        ({"warmup_steps": -1}, "warmup_steps"),
        ({"factor": 0.0}, "factor"),
        ({"min_lr": -1.0}, "min_lr"),
    ],
)
def test_bad_scheduler_settings_name_the_key(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=f"scheduler.*{key}"):
        SchedulerConfig(**options)  # type: ignore[arg-type]


class BiasModel(nn.Module):
    """Logits from one bias vector (the trainer needs only forward and tgt_pad)."""

    tgt_pad = 0

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(5))

    def forward(self, src, src_lengths, tgt_in, teacher_forcing=1.0):  # type: ignore[no-untyped-def]
        return self.bias.expand(tgt_in.size(0), tgt_in.size(1), 5)


def test_trainer_steps_a_per_step_schedule_after_every_step(tmp_path: Path) -> None:
    model = BiasModel()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    warmup = 4
    sched = build_scheduler(
        opt, SchedulerConfig(name=SchedulerName.warmup_inverse_sqrt, warmup_steps=warmup)
    )
    cfg = TrainerConfig(max_epochs=2, device=DeviceChoice.cpu, log_every_steps=1, test_split=None)
    trainer = Trainer(
        model,  # type: ignore[arg-type]
        opt,
        sched,
        cfg,
        device=torch.device("cpu"),
        out_dir=tmp_path,
        validate=lambda m: {"val_loss": 1.0},
        checkpoint_data={},
    )
    batch = collate([([3, 4], [3])], [0], pad_idx=0, bos_idx=1, eos_idx=2)
    trainer.fit(SameBatches([batch] * 5))
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in records if r["type"] == "train"]
    # a record at step s shows the lr the next step (index s) will use
    for record in train:
        n = record["step"] + 1
        expected = LR * min(n / warmup, math.sqrt(warmup / n))
        assert record["lr"] == pytest.approx(expected), record["step"]
