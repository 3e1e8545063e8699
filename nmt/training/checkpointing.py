"""Saving and resuming, for :class:`nmt.training.trainer.Trainer`.

A save writes, on the main process, one checkpoint that holds what the run
needs to go on exactly where it is: model, optimizer, scheduler, gradient
scaler, the trainer's state (epoch, step, batch position, running sums, best
score) and every process's random-generator states, with the config and
vocabularies the trainer was given.  A model with non-finite weights is
never saved.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import CheckpointError, load_checkpoint
from nmt.training.distributed import Distributed
from nmt.training.errors import TrainingError
from nmt.training.logger import MetricsLog
from nmt.training.state import (
    CheckpointFiles,
    TrainingParts,
    TrainState,
    capture_rng,
    resolve_resume_path,
    restore_rng,
    run_dir_of,
)

log = logging.getLogger(__name__)


class CheckpointMixin:
    """``save`` and ``resume``; the Trainer provides the attributes below."""

    model: Any  # the plain module (not its DDP / compiled wrapper)
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: torch.amp.GradScaler
    state: TrainState
    dist: Distributed
    files: CheckpointFiles
    log: MetricsLog
    device: torch.device
    out_dir: Path
    checkpoint_data: dict[str, Any]
    _last_val: dict[str, float]
    _start: float

    def _check_weights(self) -> None:
        finite = torch.stack([torch.isfinite(p).all() for p in self.model.parameters()]).all()
        if not bool(finite):
            raise TrainingError(
                f"step {self.state.step}: the model's weights are not finite; stopped "
                f"without saving (the last good checkpoint, if any, is {self.files.last})"
            )

    def save(self, *, best: bool = False, snapshot: bool = False) -> None:
        """Write ``last.pt`` (and ``best.pt`` / a step snapshot) on the main process;
        every process hands in its random-generator states."""
        self._check_weights()
        self.state.elapsed_s = time.perf_counter() - self._start
        rngs = self.dist.gather(capture_rng(self.device))
        if not self.dist.is_main:
            return
        self.state.metrics_bytes = self.log.size()
        self.state.world_size = self.dist.world_size
        parts = TrainingParts(self.model, self.optimizer, self.scheduler, self.scaler)
        payload = parts.payload(self.state, self._last_val, rngs) | self.checkpoint_data
        self.files.save(payload, self.state.step, best=best, snapshot=snapshot)

    def resume(self, path: str | Path, data: dict[str, Any] | None = None) -> None:
        """Continue from a checkpoint (or a run dir's ``checkpoints/last.pt``) at the
        step it was written: same batch position, generators and running sums.
        ``data`` is the checkpoint when the caller has loaded it already."""
        path = resolve_resume_path(path)
        data = load_checkpoint(path) if data is None else data
        try:
            TrainingParts(self.model, self.optimizer, self.scheduler, self.scaler).load(data)
        except (KeyError, RuntimeError, ValueError) as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = " ".join(lines[:2])[:300] or type(exc).__name__  # what, then where
            raise CheckpointError(
                f"{path}: cannot resume from it with this config (model, optimizer and "
                f"scheduler must match the run's): {reason}"
            ) from None
        self.state = TrainState.from_dict(data["trainer_state"])
        self._last_val = dict(data.get("val_metrics") or {})
        self._adapt_world_size()
        rngs = data.get("rng_per_rank")
        own = rngs[self.dist.rank] if rngs and len(rngs) == self.dist.world_size else None
        restore_rng(own or data["rng"], self.device)
        source = run_dir_of(path)
        same_dir = source == self.out_dir.resolve()
        self.log.restore(self.state.metrics_bytes, self.state.step, None if same_dir else source)
        log.info(
            "resumed from %s at epoch %d, step %d (batch %d of the next epoch)",
            path,
            self.state.epoch,
            self.state.step,
            self.state.batch_in_epoch,
        )

    def _adapt_world_size(self) -> None:
        old, new = self.state.world_size, self.dist.world_size
        if old != new and self.state.batch_in_epoch > 0:
            position = self.state.batch_in_epoch * old // new
            log.warning(
                "checkpoint written by %d processes, resumed by %d: the epoch goes on at "
                "batch %d of this process's share (batch order per process differs)",
                old,
                new,
                position,
            )
            self.state.batch_in_epoch = position
        self.state.world_size = new
