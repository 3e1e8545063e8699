"""A training run's checkpoints: which files, what goes in them, and resume.

:class:`Checkpointer` is the trainer's one door to its checkpoints.  A save
writes, on the main process, one file that holds what the run needs to go on
exactly where it is: model, optimizer, scheduler, gradient scaler, the
trainer's state (epoch, step, batch position, running sums, best score) and
every process's random-generator states (Python, NumPy, torch CPU and CUDA:
dropout and teacher-forcing coins), with the config and vocabularies the
trainer was given.  A model with non-finite weights is never saved.
Everything is stored as tensors and plain data, so that
``torch.load(weights_only=True)`` reads it.
"""

from __future__ import annotations

import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import (
    BEST,
    CHECKPOINTS,
    LAST,
    CheckpointError,
    link_checkpoint,
    load_checkpoint,
    resolve_checkpoint,
    run_dir_of,
    save_checkpoint,
)
from nmt.training.distributed import Distributed
from nmt.training.errors import TrainingError
from nmt.training.logger import MetricsLog
from nmt.training.resume_checks import batching_changes
from nmt.training.state import Sums, TrainState

log = logging.getLogger(__name__)

SNAPSHOT = re.compile(r"^step_(\d+)\.pt$")


@dataclass
class TrainingParts:
    """The objects whose state a checkpoint carries besides the trainer's own."""

    model: torch.nn.Module  # the plain module (not its DDP / compiled wrapper)
    optimizer: torch.optim.Optimizer
    scheduler: Any  # an LRScheduler, ReduceLROnPlateau or None
    scaler: torch.amp.GradScaler

    def payload(
        self, state: TrainState, val: dict[str, float], rngs: list[dict[str, Any]]
    ) -> dict[str, Any]:
        """The checkpoint dict; ``rngs`` holds each process's generators, by rank."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": None if self.scheduler is None else self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else None,
            "trainer_state": state.to_dict(),
            "val_metrics": dict(val),
            "rng": rngs[0],
            "rng_per_rank": rngs if len(rngs) > 1 else None,
        }

    def load(self, data: dict[str, Any]) -> None:
        self.model.load_state_dict(data["model"])
        self.optimizer.load_state_dict(data["optimizer"])
        if self.scheduler is not None and data.get("scheduler") is not None:
            self.scheduler.load_state_dict(data["scheduler"])
        if self.scaler.is_enabled() and data.get("scaler"):
            self.scaler.load_state_dict(data["scaler"])


# -- random number generators -------------------------------------------------------
def capture_rng(device: torch.device | None = None) -> dict[str, Any]:
    """The state of every generator training draws from, as tensors and plain data."""
    version, internal, gauss = random.getstate()
    state: dict[str, Any] = {
        "python": list(internal),
        "python_version": version,
        "python_gauss": gauss,
        "torch": torch.get_rng_state(),
    }
    try:
        import numpy as np

        kind, keys, pos, has_gauss, cached = np.random.get_state()  # type: ignore[misc]
        state["numpy"] = {
            "kind": str(kind),
            "keys": [int(k) for k in keys],
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached),
        }
    except ImportError:  # pragma: no cover - numpy is optional
        pass
    if device is not None and device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state(device)
    return state


def restore_rng(state: dict[str, Any], device: torch.device | None = None) -> None:
    """Put the generators back where :func:`capture_rng` found them."""
    random.setstate((state["python_version"], tuple(state["python"]), state.get("python_gauss")))
    torch.set_rng_state(state["torch"])
    numpy_state = state.get("numpy")
    if numpy_state is not None:
        import numpy as np

        np.random.set_state(
            (
                numpy_state["kind"],
                np.array(numpy_state["keys"], dtype=np.uint32),
                numpy_state["pos"],
                numpy_state["has_gauss"],
                numpy_state["cached_gaussian"],
            )
        )
    if device is not None and device.type == "cuda" and "cuda" in state:
        torch.cuda.set_rng_state(state["cuda"], device)


# -- files ----------------------------------------------------------------------------
class CheckpointFiles:
    """``last.pt``, ``best.pt`` and the newest ``keep_last`` ``step_NNNNNN.pt``.

    Each save writes ``last.pt`` once (temp file + rename); ``best.pt`` and the
    step snapshot are hard links to that file where the file system allows
    (copies otherwise), so a save costs one write whatever it updates.
    """

    def __init__(self, directory: Path, keep_last: int = 0) -> None:
        self.directory = Path(directory)
        self.keep_last = keep_last

    @property
    def last(self) -> Path:
        return self.directory / LAST

    @property
    def best(self) -> Path:
        return self.directory / BEST

    def snapshot(self, step: int) -> Path:
        return self.directory / f"step_{step:06d}.pt"

    def save(self, payload: dict[str, Any], step: int, *, best: bool, snapshot: bool) -> None:
        save_checkpoint(payload, self.last)
        if best:
            link_checkpoint(self.last, self.best)
        if snapshot and self.keep_last > 0:
            link_checkpoint(self.last, self.snapshot(step))
            self.prune()

    def snapshots(self) -> list[tuple[int, Path]]:
        """(step, path) of the step snapshots on disk, oldest first."""
        if not self.directory.is_dir():
            return []
        found = []
        for path in self.directory.iterdir():
            match = SNAPSHOT.match(path.name)
            if match:
                found.append((int(match.group(1)), path))
        return sorted(found)

    def prune(self) -> None:
        for _, path in self.snapshots()[: -self.keep_last]:
            path.unlink(missing_ok=True)


# -- the trainer's checkpoints ----------------------------------------------------------
class Checkpointer:
    """Saves a run's training parts into ``run_dir/checkpoints/`` and resumes from
    a checkpoint.  Every process calls :meth:`save` (each hands in its
    generators); the main process alone writes.  ``extra`` (config,
    vocabularies, ...) goes into every file as it is."""

    def __init__(
        self,
        parts: TrainingParts,
        run_dir: Path,
        *,
        keep_last: int,
        dist: Distributed,
        device: torch.device,
        metrics: MetricsLog,
        extra: dict[str, Any],
    ) -> None:
        self.parts = parts
        self.run_dir = Path(run_dir)
        self.files = CheckpointFiles(self.run_dir / CHECKPOINTS, keep_last)
        self.dist = dist
        self.device = device
        self.metrics = metrics
        self.extra = extra

    def _check_weights(self, step: int) -> None:
        params = self.parts.model.parameters()
        if not bool(torch.stack([torch.isfinite(p).all() for p in params]).all()):
            raise TrainingError(
                f"step {step}: the model's weights are not finite; stopped without saving "
                f"(the last good checkpoint, if any, is {self.files.last})"
            )

    def save(self, state: TrainState, val: dict[str, float], *, best: bool, snapshot: bool) -> None:
        """Write ``last.pt`` (and ``best.pt`` / a step snapshot) with ``state`` and
        the latest validation metrics ``val``."""
        self._check_weights(state.step)
        rngs = self.dist.gather(capture_rng(self.device))
        if not self.dist.is_main:
            return
        state.metrics_bytes = self.metrics.size()
        state.world_size = self.dist.world_size
        payload = self.parts.payload(state, val, rngs) | self.extra
        self.files.save(payload, state.step, best=best, snapshot=snapshot)

    def resume(
        self, path: str | Path, data: dict[str, Any] | None = None, *, weights_only: bool = False
    ) -> tuple[TrainState, dict[str, float]]:
        """Load the training parts and generators from a checkpoint (or a run dir's
        ``checkpoints/last.pt``), put ``metrics.jsonl`` back to that step, and
        return the train state and validation metrics saved with them.  ``data``
        is the checkpoint when the caller has loaded it already.  ``weights_only``:
        the model's weights alone, and a fresh state (step 0)."""
        path = resolve_checkpoint(path, LAST)
        data = load_checkpoint(path) if data is None else data
        if weights_only:
            return self._load_weights(path, data), {}
        self._load_parts(path, data)
        state = TrainState.from_dict(data["trainer_state"])
        self._adapt_world_size(state)
        self._adapt_batching(state, data.get("config") or {})
        rngs = data.get("rng_per_rank")
        own = rngs[self.dist.rank] if rngs and len(rngs) == self.dist.world_size else None
        restore_rng(own or data["rng"], self.device)
        source = run_dir_of(path)
        same_dir = source == self.run_dir.resolve()
        self.metrics.restore(state.metrics_bytes, state.step, None if same_dir else source)
        log.info(
            "resumed from %s at epoch %d, step %d (batch %d of the next epoch)",
            path,
            state.epoch,
            state.step,
            state.batch_in_epoch,
        )
        return state, dict(data.get("val_metrics") or {})

    def _load_weights(self, path: Path, data: dict[str, Any]) -> TrainState:
        try:
            self.parts.model.load_state_dict(data["model"])
        except (KeyError, RuntimeError) as exc:
            reason = " ".join(str(exc).split())[:300]
            raise CheckpointError(f"{path}: its weights do not fit this model: {reason}") from None
        log.info("took the model's weights from %s; training starts at step 0", path)
        return TrainState(world_size=self.dist.world_size)

    def _adapt_batching(self, state: TrainState, saved: dict[str, Any]) -> None:
        """Batching keys changed since the checkpoint: the batch position means
        nothing in the new batches, so the epoch in progress starts again."""
        changed = batching_changes(saved, self.extra.get("config") or {})
        if changed and state.batch_in_epoch > 0:
            log.warning(
                "resumed with %s: epoch %d starts again from its first batch",
                "; ".join(changed),
                state.epoch + 1,
            )
            state.batch_in_epoch = 0
            state.epoch_sums, state.window_sums = Sums(), Sums()

    def _load_parts(self, path: Path, data: dict[str, Any]) -> None:
        try:
            self.parts.load(data)
        except (KeyError, RuntimeError, ValueError) as exc:
            lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
            reason = " ".join(lines[:2])[:300] or type(exc).__name__  # what, then where
            raise CheckpointError(
                f"{path}: cannot resume from it with this config (model, optimizer and "
                f"scheduler must match the run's): {reason}"
            ) from None

    def _adapt_world_size(self, state: TrainState) -> None:
        old, new = state.world_size, self.dist.world_size
        if old != new and state.batch_in_epoch > 0:
            position = state.batch_in_epoch * old // new
            log.warning(
                "checkpoint written by %d processes, resumed by %d: the epoch goes on at "
                "batch %d of this process's share (batch order per process differs)",
                old,
                new,
                position,
            )
            state.batch_in_epoch = position
        state.world_size = new
