"""Optimizers and learning-rate schedules from their configs."""

from __future__ import annotations

import torch
from torch import nn

from nmt.config import OptimizerConfig, OptimizerName, SchedulerConfig, SchedulerName

Scheduler = torch.optim.lr_scheduler.LRScheduler | torch.optim.lr_scheduler.ReduceLROnPlateau


def build_optimizer(model: nn.Module, cfg: OptimizerConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if cfg.name == OptimizerName.sgd:
        return torch.optim.SGD(
            params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
    cls = torch.optim.AdamW if cfg.name == OptimizerName.adamw else torch.optim.Adam
    return cls(params, lr=cfg.lr, betas=(cfg.betas[0], cfg.betas[1]), weight_decay=cfg.weight_decay)


def build_scheduler(optimizer: torch.optim.Optimizer, cfg: SchedulerConfig) -> Scheduler | None:
    """Epoch-level schedules; ``plateau`` watches the validation loss."""
    if cfg.name == SchedulerName.none:
        return None
    if cfg.name == SchedulerName.plateau:
        return torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, mode="min", factor=cfg.factor, patience=cfg.patience, min_lr=cfg.min_lr
        )
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=cfg.step_size, gamma=cfg.factor)
