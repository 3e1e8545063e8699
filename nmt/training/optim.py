"""Optimizers and learning-rate schedules from their configs.

Epoch schedules (``plateau``, ``step``) are stepped once per epoch, after
validation.  Step schedules (``warmup_inverse_sqrt``, ``cosine``) are
:class:`PerStepLR` and are stepped after every optimizer step; their factor of
``optimizer.lr`` at optimizer step ``s`` (0 for the first step) is, with
``w = warmup_steps`` and ``T`` the total number of steps:

- warmup_inverse_sqrt: ``min((s + 1) / w, sqrt(w / (s + 1)))``
  (Vaswani et al. 2017, sec. 5.3, scaled so that the peak is ``optimizer.lr``);
- cosine: ``(s + 1) / w`` while ``s < w``, then
  ``m + (1 - m) * (1 + cos(pi * p)) / 2`` with ``p = (s - w) / (T - w)`` capped
  at 1 and ``m = min_lr / lr`` (Loshchilov & Hutter 2017, one cycle, no restarts).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nmt.config import OptimizerConfig, OptimizerName, SchedulerConfig, SchedulerName

Scheduler = torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau

PER_STEP = (SchedulerName.warmup_inverse_sqrt, SchedulerName.cosine)


class PerStepLR(torch.optim.lr_scheduler.LambdaLR):
    """A LambdaLR that the trainer steps after every optimizer step (not per epoch)."""


def build_optimizer(model: nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.name == OptimizerName.sgd:
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    cls = torch.optim.AdamW if cfg.name == OptimizerName.adamw else torch.optim.Adam
    return cls(params, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), weight_decay=cfg.weight_decay)


def warmup_inverse_sqrt_factor(step: int, warmup: int) -> float:
    """Factor of the peak lr at optimizer step ``step`` (0-based); ``warmup`` >= 1."""
    n = step + 1
    return min(n / warmup, math.sqrt(warmup / n))


def cosine_factor(step: int, warmup: int, total: int, floor: float) -> float:
    """Factor of the peak lr at optimizer step ``step`` (0-based): linear warm-up,
    then half a cosine down to ``floor`` at step ``total`` (and ``floor`` after)."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(total - warmup, 1))
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def total_training_steps(max_steps: int | None, max_epochs: int, steps_per_epoch: int) -> int:
    """The step count a cosine schedule spans: ``max_steps``, else epochs x steps."""
    by_epochs = max_epochs * max(steps_per_epoch, 1)
    return by_epochs if max_steps is None else min(max_steps, by_epochs)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: SchedulerConfig, total_steps: int | None = None
) -> Scheduler | None:
    """The schedule of ``cfg``; ``cosine`` needs ``total_steps``."""
    if cfg.name == SchedulerName.none:
        return None
    if cfg.name == SchedulerName.plateau:
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=cfg.factor, patience=cfg.patience, min_lr=cfg.min_lr
        )
    if cfg.name == SchedulerName.step:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.factor)
    warmup = cfg.warmup_steps
    if cfg.name == SchedulerName.warmup_inverse_sqrt:
        return PerStepLR(optimizer, lambda s: warmup_inverse_sqrt_factor(s, warmup))
    if total_steps is None:
        raise ValueError("scheduler=cosine needs the total number of optimizer steps")
    base_lr = optimizer.param_groups[0]["lr"]
    floor = min(cfg.min_lr / base_lr, 1.0)
    steps = total_steps
    return PerStepLR(optimizer, lambda s: cosine_factor(s, warmup, steps, floor))
