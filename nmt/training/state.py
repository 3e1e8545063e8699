"""The trainer's own state: where the run is and the running sums of its loss.

It goes into every checkpoint as plain data (``trainer_state``), so that a
resumed run goes on at the same batch position of the epoch with the same
running sums (see :mod:`nmt.training.checkpointing` for the rest of what a
checkpoint holds).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from typing import Any


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
