"""The training loop: batches in, loss out.

The trainer knows nothing about text or about a particular architecture: it
calls ``model(src, src_lengths, tgt_in, teacher_forcing)`` for logits, takes
a padding-aware cross-entropy, clips, steps, validates through a callback,
and keeps ``checkpoints/best.pt`` and ``checkpoints/last.pt`` up to date.
"""

from __future__ import annotations

import json
import logging
import math
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from nmt.checkpoint import load_checkpoint, save_checkpoint
from nmt.config import BestMetric, TrainerConfig
from nmt.data.batching import Batch
from nmt.metrics import perplexity
from nmt.models.seq2seq import Seq2Seq
from nmt.training.optim import Scheduler
from nmt.training.schedules import teacher_forcing_at

log = logging.getLogger(__name__)

Validator = Callable[[Seq2Seq], dict[str, float]]


class TrainingError(RuntimeError):
    """Training cannot go on (for example a non-finite loss)."""


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best_score: float | None = None
    best_epoch: int | None = None
    elapsed_s: float = 0.0  # training time before this process (resumed runs)


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
    ) -> None:
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.cfg = cfg
        self.device = device
        self.out_dir = Path(out_dir)
        self.ckpt_dir = self.out_dir / "checkpoints"
        self.validate = validate
        self.checkpoint_data = checkpoint_data
        self.state = TrainState()
        self.metrics_path = self.out_dir / "metrics.jsonl"

    # -- one step -----------------------------------------------------------------
    def train_step(self, batch: Batch) -> torch.Tensor:
        """Forward, loss, backward, clip, step; returns the summed NLL (detached)."""
        self.model.train()
        ratio = teacher_forcing_at(self.cfg, self.state.step)
        logits = self.model(batch.src, batch.src_lengths, batch.tgt_in, teacher_forcing=ratio)
        nll_sum = F.cross_entropy(
            logits.reshape(-1, logits.size(-1)).float(),
            batch.tgt_out.reshape(-1),
            ignore_index=self.model.tgt_pad,
            reduction="sum",
        )
        loss = nll_sum / max(batch.ntokens, 1)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.cfg.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.clip_grad_norm)
        self.optimizer.step()
        self.state.step += 1
        return nll_sum.detach()

    # -- the loop -------------------------------------------------------------------
    def fit(
        self, epoch_batches: Callable[[int], Iterable[Batch]], steps_per_epoch: int
    ) -> TrainState:
        """Train until ``max_epochs``, ``max_steps`` or ``max_minutes`` is reached."""
        self.out_dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter() - self.state.elapsed_s
        while self.state.epoch < self.cfg.max_epochs and not self._out_of_budget(start):
            epoch = self.state.epoch + 1
            train_nll, train_tokens, seconds = self._run_epoch(
                epoch, epoch_batches(epoch), steps_per_epoch, start
            )
            self.state.epoch = epoch
            self.state.elapsed_s = time.perf_counter() - start
            val = self.validate(self.model)
            record = {
                "type": "epoch",
                "epoch": epoch,
                "step": self.state.step,
                "train_loss": train_nll / max(train_tokens, 1),
                "train_ppl": perplexity(train_nll, train_tokens),
                **val,
                "lr": self.optimizer.param_groups[0]["lr"],
                "teacher_forcing": self._last_teacher_forcing(),
                "epoch_time_s": round(seconds, 2),
                "tokens_per_s": round(train_tokens / max(seconds, 1e-9), 1),
                "elapsed_s": round(self.state.elapsed_s, 2),
            }
            self._log(record)
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
            self._save(val)
        return self.state

    def _out_of_budget(self, start: float) -> bool:
        if self.cfg.max_steps is not None and self.state.step >= self.cfg.max_steps:
            return True
        minutes = self.cfg.max_minutes
        return minutes is not None and time.perf_counter() - start >= minutes * 60

    def _run_epoch(
        self, epoch: int, batches: Iterable[Batch], total: int, start: float
    ) -> tuple[float, int, float]:
        bar = tqdm(batches, total=total, desc=f"epoch {epoch}", unit="batch", leave=False)
        epoch_nll = torch.zeros((), dtype=torch.float64, device=self.device)
        window_nll = torch.zeros((), dtype=torch.float64, device=self.device)
        epoch_tokens = window_tokens = 0
        t0 = window_t0 = time.perf_counter()
        for batch in bar:
            nll = self.train_step(batch.to(self.device, non_blocking=True))
            epoch_nll += nll
            window_nll += nll
            epoch_tokens += batch.ntokens
            window_tokens += batch.ntokens
            if self.state.step % self.cfg.log_every_steps == 0:
                now = time.perf_counter()
                self._log_window(
                    bar, epoch, float(window_nll.item()), window_tokens, now - window_t0
                )
                window_nll.zero_()
                window_tokens, window_t0 = 0, now
            if self._out_of_budget(start):
                break
        bar.close()
        total_nll = float(epoch_nll.item())
        if not math.isfinite(total_nll):
            raise TrainingError(
                f"epoch {epoch}: the training loss is not finite; stopped without saving "
                f"(the last good checkpoint is {self.ckpt_dir / 'last.pt'})"
            )
        return total_nll, epoch_tokens, time.perf_counter() - t0

    def _log_window(self, bar: Any, epoch: int, nll: float, tokens: int, seconds: float) -> None:
        loss = nll / max(tokens, 1)
        if not math.isfinite(loss):
            raise TrainingError(
                f"step {self.state.step}: the training loss is {loss}; stopped without saving "
                f"(the last good checkpoint is {self.ckpt_dir / 'last.pt'})"
            )
        lr = self.optimizer.param_groups[0]["lr"]
        speed = tokens / max(seconds, 1e-9)
        bar.set_postfix(
            loss=f"{loss:.3f}",
            ppl=f"{math.exp(min(loss, 50)):.1f}",
            lr=f"{lr:.2e}",
            tok_s=f"{speed:.0f}",
        )
        self._log(
            {
                "type": "train",
                "epoch": epoch,
                "step": self.state.step,
                "loss": loss,
                "ppl": perplexity(nll, tokens),
                "lr": lr,
                "tokens_per_s": round(speed, 1),
                "teacher_forcing": self._last_teacher_forcing(),
            }
        )

    def _last_teacher_forcing(self) -> float:
        """The ratio the latest optimizer step trained with."""
        return teacher_forcing_at(self.cfg, max(self.state.step - 1, 0))

    def _log(self, record: dict[str, Any]) -> None:
        with self.metrics_path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def _step_scheduler(self, val: dict[str, float]) -> None:
        if self.scheduler is None:
            return
        if isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            self.scheduler.step(val["val_loss"])
        else:
            self.scheduler.step()

    # -- checkpoints ------------------------------------------------------------------
    def _score(self, val: dict[str, float]) -> float:
        """Higher is better."""
        if self.cfg.best_metric == BestMetric.bleu and "val_bleu" in val:
            return val["val_bleu"]
        return -val["val_loss"]

    def _save(self, val: dict[str, float]) -> None:
        score = self._score(val)
        improved = self.state.best_score is None or score > self.state.best_score
        if improved:
            self.state.best_score, self.state.best_epoch = score, self.state.epoch
        payload = self._payload(val)
        save_checkpoint(payload, self.ckpt_dir / "last.pt")
        if improved:
            save_checkpoint(payload, self.ckpt_dir / "best.pt")

    def _payload(self, val: dict[str, float]) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "trainer_state": asdict(self.state),
            "val_metrics": dict(val),
            "rng": {
                "python": list(random.getstate()[1]),
                "python_version": random.getstate()[0],
                "torch": torch.get_rng_state(),
            },
            **self.checkpoint_data,
        }

    def resume(self, path: str | Path) -> None:
        """Continue from a checkpoint (or a run dir's ``checkpoints/last.pt``),
        at the start of the epoch after the one it finished."""
        path = Path(path)
        if path.is_dir():
            path = (
                path / "checkpoints" / "last.pt"
                if (path / "checkpoints").is_dir()
                else path / "last.pt"
            )
        data = load_checkpoint(path)
        self.model.load_state_dict(data["model"])
        self.optimizer.load_state_dict(data["optimizer"])
        if self.scheduler is not None and data.get("scheduler") is not None:
            self.scheduler.load_state_dict(data["scheduler"])
        self.state = TrainState(**data["trainer_state"])
        rng = data["rng"]
        random.setstate((rng["python_version"], tuple(rng["python"]), None))
        torch.set_rng_state(rng["torch"])
        log.info("resumed from %s at epoch %d, step %d", path, self.state.epoch, self.state.step)
