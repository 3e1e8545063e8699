"""A batch source for trainer tests: the same batches in every epoch."""

from __future__ import annotations

from dataclasses import dataclass

from nmt.data.batching import Batch


@dataclass
class SameBatches:
    """``items`` in every epoch (a :class:`nmt.training.sources.BatchSource`)."""

    items: list[Batch]

    def num_batches(self, epoch: int) -> int:
        return len(self.items)

    def batches(self, epoch: int, start: int) -> list[Batch]:
        return self.items[start:]
