"""What a checkpoint must hold to resume a run exactly, and the checkpoint files.

A run resumed from a checkpoint continues as if it had never stopped: the
same batch position within the epoch, the same random streams (Python,
NumPy, torch CPU and CUDA: dropout and teacher-forcing coins), the same
running sums of the epoch's loss.  Everything is stored as tensors and plain
data, so that ``torch.load(weights_only=True)`` reads it.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import CheckpointError, link_checkpoint, save_checkpoint

log = logging.getLogger(__name__)

SNAPSHOT = re.compile(r"^step_(\d+)\.pt$")


@dataclass
class Sums:
    """Summed token NLL, summed training loss (label-smoothed) and target tokens,
    over all processes."""

    nll: float = 0.0
    loss: float = 0.0
    tokens: int = 0
    seconds: float = 0.0  # wall-clock time these sums took

    def add(self, nll: float, loss: float, tokens: int) -> None:
        self.nll += nll
        self.loss += loss
        self.tokens += tokens


@dataclass
class TrainState:
    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    batch_in_epoch: int = 0  # batches of epoch `epoch + 1` already trained (sampler position)
    best_score: float | None = None
    best_epoch: int | None = None
    elapsed_s: float = 0.0  # training time before this process (resumed runs)
    epoch_sums: Sums = field(default_factory=Sums)  # the epoch in progress
    window_sums: Sums = field(default_factory=Sums)  # since the last log record
    metrics_bytes: int | None = None  # length of metrics.jsonl when the checkpoint was written
    world_size: int = 1  # processes that trained it

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        """Also reads the fewer keys of older checkpoints."""
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in data.items() if k in names}
        for key in ("epoch_sums", "window_sums"):
            if isinstance(values.get(key), dict):
                values[key] = Sums(**values[key])
        return cls(**values)


@dataclass
class TrainingParts:
    """The objects whose state a checkpoint carries besides the trainer's own."""

    model: torch.nn.Module
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
def resolve_resume_path(path: str | Path) -> Path:
    """A checkpoint file as given, or a run dir's ``checkpoints/last.pt``."""
    path = Path(path)
    if path.is_dir():
        nested = path / "checkpoints" / "last.pt"
        path = nested if nested.is_file() or not (path / "last.pt").is_file() else path / "last.pt"
    if not path.is_file():
        raise CheckpointError(f"trainer.resume_from: no checkpoint at {path}")
    return path


def run_dir_of(checkpoint: Path) -> Path:
    """The run dir a checkpoint file sits in (``RUN/checkpoints/x.pt`` -> ``RUN``)."""
    parent = checkpoint.resolve().parent
    return parent.parent if parent.name == "checkpoints" else parent


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
        return self.directory / "last.pt"

    @property
    def best(self) -> Path:
        return self.directory / "best.pt"

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
