"""The training loop: batches in, loss out.

The trainer knows nothing about text or about a particular architecture: it
calls ``model(src, src_lengths, tgt_in, teacher_forcing)`` for logits, takes
a padding-aware (optionally label-smoothed) cross-entropy, clips, steps,
validates through a callback, and keeps ``checkpoints/last.pt``,
``checkpoints/best.pt`` and the newest ``trainer.keep_last`` step snapshots.

A checkpoint holds everything a run needs to go on exactly where it stopped,
mid-epoch included; the trainer's :class:`Checkpointer` writes and reads it
(see :mod:`nmt.training.checkpointing`).  Loss values stay on the device
between log steps: the host reads them (and checks that they are finite) at
log steps, before every save and at the end of an epoch.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import torch

from nmt.config import BestMetric, Precision, TrainerConfig
from nmt.data.batching import Batch
from nmt.metrics import perplexity
from nmt.models.seq2seq import Seq2Seq
from nmt.training.checkpointing import Checkpointer, TrainingParts
from nmt.training.distributed import Distributed, wrap_model
from nmt.training.errors import TrainingError, TrainingInterrupted
from nmt.training.logger import MetricsLog, epoch_progress
from nmt.training.losses import token_losses
from nmt.training.optim import PerStepLR, Scheduler
from nmt.training.precision import (
    autocast,
    build_grad_scaler,
    cpu_fp16_supported,
    resolve_precision,
)
from nmt.training.schedules import teacher_forcing_at
from nmt.training.signals import StopRequest
from nmt.training.sources import BatchSource
from nmt.training.state import Sums, TrainState
from nmt.utils import release_free_memory, rss_mb

log = logging.getLogger(__name__)

Validator = Callable[[Seq2Seq], dict[str, float]]

__all__ = ["BatchSource", "Trainer", "TrainingError", "TrainingInterrupted", "TrainState"]


class Trainer:
    def __init__(
        self,
        model: Seq2Seq,
        optimizer: torch.optim.Optimizer,
        scheduler: Scheduler | None,
        cfg: TrainerConfig,
        *,
        device: torch.device,
        out_dir: Path,
        validate: Validator,
        checkpoint_data: dict[str, Any],
        dist: Distributed | None = None,
    ) -> None:
        if cfg.precision == Precision.fp16 and device.type == "cpu" and not cpu_fp16_supported():
            raise TrainingError(
                "trainer.precision=fp16: this CPU has no float16 autocast kernels for RNNs; "
                "use trainer.precision=bf16 on CPU (fp16 is for CUDA)"
            )
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.cfg = cfg
        self.device = device
        self.out_dir = Path(out_dir)
        self.validate = validate
        self.dist = dist or Distributed(device=device)
        self.net = wrap_model(model, self.dist, compile=cfg.compile)
        self.precision = resolve_precision(cfg.precision, device)
        if cfg.precision == Precision.auto:
            log.info("trainer.precision=auto: %s on %s", self.precision.value, device.type)
        self.scaler = build_grad_scaler(self.precision, device)
        self.log = MetricsLog(self.out_dir, enabled=self.dist.is_main, tensorboard=cfg.tensorboard)
        self.checkpointer = Checkpointer(
            TrainingParts(model, optimizer, scheduler, self.scaler),
            self.out_dir,
            keep_last=cfg.keep_last,
            dist=self.dist,
            device=device,
            metrics=self.log,
            extra=checkpoint_data,
        )
        self.state = TrainState(world_size=self.dist.world_size)
        self._pending = torch.zeros(2, dtype=torch.float64, device=device)  # nll, loss
        self._pending_tokens = 0
        self._fold_t0 = time.perf_counter()
        self._start = time.perf_counter()
        self._last_val: dict[str, float] = {}
        self._stop = StopRequest()

    # -- one step -----------------------------------------------------------------
    def train_step(self, batch: Batch) -> torch.Tensor:
        """Forward, loss, backward, clip, step; returns the summed NLL (detached)."""
        return self._train_step(batch)[0]

    def _logits(self, batch: Batch, ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
        """Logits and the targets they predict.  A plain (not compiled, not
        distributed) nmt model skips the padded target positions
        (``Seq2Seq.forward_packed``: the same logits at the real ones); other
        wrappers and models give ``(B, T, V)`` over the whole padded target."""
        packed = getattr(self.model, "forward_packed", None)
        if self.net is self.model and packed is not None:
            logits, index = packed(
                batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing=ratio
            )
            return logits, batch.tgt_out.reshape(-1).index_select(0, index)
        logits = self.net(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing=ratio)
        return logits, batch.tgt_out

    def _train_step(self, batch: Batch | list[Batch]) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step over one batch, or over the ``trainer.accumulate``
        batches of a list: each one's summed loss divided by the target tokens
        of them all, so that the gradient is that of one batch holding them
        all.  Under DDP the gradients are synchronized on the last one only."""
        batches = batch if isinstance(batch, list) else [batch]
        self.net.train()
        ratio = teacher_forcing_at(self.cfg, self.state.step)
        self.optimizer.zero_grad(set_to_none=True)
        ntokens = max(sum(b.ntokens for b in batches), 1)
        sums = torch.zeros(2, device=self.device)  # summed NLL and loss, float32 as the losses
        for i, part in enumerate(batches):
            sync = i == len(batches) - 1
            with contextlib.nullcontext() if sync else self._no_sync():
                with autocast(self.precision, self.device):
                    logits, target = self._logits(part, ratio)
                nll_sum, loss_sum = token_losses(
                    logits, target, self.model.tgt_pad, self.cfg.label_smoothing
                )
                self.scaler.scale(loss_sum / ntokens).backward()
            sums += torch.stack((nll_sum.detach(), loss_sum.detach()))
        if self.cfg.clip_grad_norm is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        if isinstance(self.scheduler, PerStepLR):
            self.scheduler.step()
        self.state.step += 1
        return sums[0], sums[1]

    def _no_sync(self) -> contextlib.AbstractContextManager[Any]:
        """DDP's no_sync (no all-reduce of gradients), else nothing."""
        no_sync = getattr(self.net, "no_sync", None)
        return no_sync() if no_sync is not None else contextlib.nullcontext()

    # -- the loop -------------------------------------------------------------------
    def fit(self, batches: BatchSource) -> TrainState:
        """Train until ``max_epochs``, ``max_steps``, ``max_minutes`` or early stopping."""
        self._start = time.perf_counter() - self.state.elapsed_s
        self._stop = StopRequest()
        try:
            with self._stop:
                while not self._finished():
                    epoch = self.state.epoch + 1
                    self._run_epoch(epoch, batches)
                    self._end_epoch(epoch)
        except TrainingInterrupted:
            self.log.plot()
            raise
        finally:
            self.log.close()
        self.log.plot()
        return self.state

    def _out_of_time(self) -> bool:
        minutes = self.cfg.max_minutes
        return minutes is not None and time.perf_counter() - self._start >= minutes * 60

    def _out_of_steps(self) -> bool:
        return self.cfg.max_steps is not None and self.state.step >= self.cfg.max_steps

    def _early_stopped(self) -> bool:
        patience, best = self.cfg.patience, self.state.best_epoch
        return patience is not None and best is not None and self.state.epoch - best >= patience

    def _finished(self) -> bool:
        if self._early_stopped():
            log.info(
                "early stop: no better %s for %d epochs (best: epoch %s)",
                self.cfg.best_metric.value,
                self.cfg.patience,
                self.state.best_epoch,
            )
            return True
        done = self.state.epoch >= self.cfg.max_epochs or self._out_of_steps()
        return self.dist.any([done or self._out_of_time()])[0]

    def _run_epoch(self, epoch: int, source: BatchSource) -> None:
        total = source.num_batches(epoch)
        first = self.state.batch_in_epoch
        if first == 0:
            self.state.epoch_sums, self.state.window_sums = Sums(), Sums()
        bar = epoch_progress(
            total, first, epoch, enabled=self.dist.is_main, every_s=self.cfg.progress_every_s
        )
        self._fold_t0 = time.perf_counter()
        for group in self._groups(source.batches(epoch, first)):
            nll, loss = self._train_step(group)
            self._pending += torch.stack((nll, loss)).double()
            self._pending_tokens += sum(batch.ntokens for batch in group)
            self.state.batch_in_epoch += len(group)
            bar.update(len(group))
            if self._after_step(epoch, bar, last=self.state.batch_in_epoch >= total):
                break
        bar.close()
        self._fold(epoch)

    def _groups(self, batches: Iterable[Batch]) -> Iterator[list[Batch]]:
        """The batches, on the device, ``trainer.accumulate`` to an optimizer
        step (the last group of an epoch may be smaller)."""
        group: list[Batch] = []
        for batch in batches:
            group.append(batch.to(self.device, non_blocking=True))
            if len(group) == self.cfg.accumulate:
                yield group
                group = []
        if group:
            yield group

    def _after_step(self, epoch: int, bar: Any, *, last: bool) -> bool:
        """Log, save or stop after a step; True ends the epoch (budget spent)."""
        signalled, out_of_time = self.dist.any([self._stop.requested, self._out_of_time()])
        budget_spent = out_of_time or self._out_of_steps()
        if self.state.step % self.cfg.log_every_steps == 0:
            self._log_window(epoch, bar)
        if signalled:
            self._interrupt(epoch)
        every = self.cfg.save_every_steps
        if every and self.state.step % every == 0 and not (last or budget_spent):
            self._fold(epoch)  # the epoch's sums go into the checkpoint
            self.save(best=False, snapshot=True)
        return budget_spent

    def _fold(self, epoch: int) -> None:
        """Move the device-side sums into the state (summed over processes); the
        one place the host waits for the loss, and checks that it is finite."""
        if self.dist.enabled:
            tokens = torch.tensor([self._pending_tokens], dtype=torch.float64, device=self.device)
            values = self.dist.sum(torch.cat((self._pending, tokens)))
            nll, loss, count = values.tolist()
            tokens_done = int(count)
        else:
            nll, loss = self._pending.tolist()
            tokens_done = self._pending_tokens
        self._pending.zero_()
        self._pending_tokens = 0
        if not (math.isfinite(nll) and math.isfinite(loss)):
            raise TrainingError(
                f"step {self.state.step} (epoch {epoch}): the training loss is not finite "
                f"({nll / max(tokens_done, 1)}); stopped without saving "
                f"(the last good checkpoint, if any, is {self.checkpointer.files.last})"
            )
        now = time.perf_counter()
        for sums in (self.state.epoch_sums, self.state.window_sums):
            sums.add(nll, loss, tokens_done)
            sums.seconds += now - self._fold_t0
        self._fold_t0 = now

    def _log_window(self, epoch: int, bar: Any) -> None:
        self._fold(epoch)
        window, self.state.window_sums = self.state.window_sums, Sums()
        loss = window.nll / max(window.tokens, 1)
        lr = self.optimizer.param_groups[0]["lr"]
        speed = window.tokens / max(window.seconds, 1e-9)
        bar.set_postfix(
            loss=f"{loss:.3f}",
            ppl=f"{math.exp(min(loss, 50)):.1f}",
            lr=f"{lr:.2e}",
            tok_s=f"{speed:.0f}",
        )
        self.log.write(
            {
                "type": "train",
                "epoch": epoch,
                "step": self.state.step,
                "loss": loss,
                "ppl": perplexity(window.nll, window.tokens),
                "smoothed_loss": window.loss / max(window.tokens, 1),
                "lr": lr,
                "tokens_per_s": round(speed, 1),
                "teacher_forcing": self._last_teacher_forcing(),
            }
        )

    def _end_epoch(self, epoch: int) -> None:
        """Validate, log, step the epoch schedule, save; stop if a signal came."""
        sums = self.state.epoch_sums
        self.state.epoch, self.state.batch_in_epoch = epoch, 0
        self.state.epoch_sums, self.state.window_sums = Sums(), Sums()
        self.state.elapsed_s = time.perf_counter() - self._start
        val = self._validate()
        release_free_memory()  # RSS then reads what the run holds, not what it freed
        record = {
            "type": "epoch",
            "epoch": epoch,
            "step": self.state.step,
            "train_loss": sums.nll / max(sums.tokens, 1),
            "train_ppl": perplexity(sums.nll, sums.tokens),
            "train_smoothed_loss": sums.loss / max(sums.tokens, 1),
            **val,
            "lr": self.optimizer.param_groups[0]["lr"],
            "teacher_forcing": self._last_teacher_forcing(),
            "epoch_time_s": round(sums.seconds, 2),
            "tokens_per_s": round(sums.tokens / max(sums.seconds, 1e-9), 1),
            "elapsed_s": round(self.state.elapsed_s, 2),
            "rss_mb": round(rss_mb(), 1),
        }
        self.log.write(record)
        log.info(
            "epoch %d: train ppl %.2f | val loss %.3f ppl %.2f bleu %.2f | %.0f tok/s",
            epoch,
            record["train_ppl"],
            val.get("val_loss", math.nan),
            val.get("val_ppl", math.nan),
            val.get("val_bleu", math.nan),
            record["tokens_per_s"],
        )
        self._step_scheduler(val)
        self.save(best=self._update_best(val), snapshot=True)
        if self.dist.any([self._stop.requested])[0]:
            self._interrupt(epoch)

    def _validate(self) -> dict[str, float]:
        """Validation runs on the main process; the others receive its result."""
        val = self.validate(self.model) if self.dist.is_main else None
        self._last_val = dict(self.dist.broadcast(val))
        return self._last_val

    def _last_teacher_forcing(self) -> float:
        """The ratio the latest optimizer step trained with."""
        return teacher_forcing_at(self.cfg, max(self.state.step - 1, 0))

    def _step_scheduler(self, val: dict[str, float]) -> None:
        if self.scheduler is None or isinstance(self.scheduler, PerStepLR):
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(val["val_loss"])
        else:
            self.scheduler.step()

    # -- checkpoints ------------------------------------------------------------------
    def save(self, *, best: bool = False, snapshot: bool = False) -> None:
        """Write ``last.pt`` (and ``best.pt`` / a step snapshot); every process
        calls it, the main process writes."""
        self.state.elapsed_s = time.perf_counter() - self._start
        self.checkpointer.save(self.state, self._last_val, best=best, snapshot=snapshot)

    def resume(self, path: str | Path, data: dict[str, Any] | None = None) -> None:
        """Continue from a checkpoint (or a run dir's ``checkpoints/last.pt``) at the
        step it was written: same batch position, generators and running sums.
        ``data`` is the checkpoint when the caller has loaded it already."""
        self.state, self._last_val = self.checkpointer.resume(
            path, data, weights_only=self.cfg.weights_only
        )

    def _score(self, val: dict[str, float]) -> float:
        """Higher is better."""
        if self.cfg.best_metric == BestMetric.bleu and "val_bleu" in val:
            return val["val_bleu"]
        return -val["val_loss"]

    def _update_best(self, val: dict[str, float]) -> bool:
        score = self._score(val)
        improved = self.state.best_score is None or score > self.state.best_score
        if improved:
            self.state.best_score, self.state.best_epoch = score, self.state.epoch
        return improved

    def _interrupt(self, epoch: int) -> None:
        """Save ``last.pt`` at this step (if not just saved) and stop."""
        if self.state.batch_in_epoch > 0:  # an epoch end has saved already
            self._fold(epoch)
            self.save(best=False, snapshot=False)
        name, signum = self._stop.name, self._stop.signum or 15
        raise TrainingInterrupted(
            f"stopped by {name} at step {self.state.step} (epoch {epoch}); saved "
            f"{self.checkpointer.files.last}; continue with trainer.resume_from={self.out_dir}",
            signum,
        )
