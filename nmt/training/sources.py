"""Where the trainer's batches come from: the batches of each epoch, from a
batch position on (a resumed run starts mid-epoch)."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from nmt.data.batching import Batch


class BatchSource(Protocol):
    """The batches of each epoch, from a batch position on (to resume mid-epoch)."""

    def num_batches(self, epoch: int) -> int: ...

    def batches(self, epoch: int, start: int) -> Iterable[Batch]: ...


@dataclass
class _CallableSource:
    """``epoch -> batches`` and a fixed number of batches per epoch."""

    make: Callable[[int], Iterable[Batch]]
    steps: int

    def num_batches(self, epoch: int) -> int:
        return self.steps

    def batches(self, epoch: int, start: int) -> Iterable[Batch]:
        return itertools.islice(self.make(epoch), start, None)


def as_batch_source(source: Any, steps_per_epoch: int | None) -> BatchSource:
    if hasattr(source, "batches") and hasattr(source, "num_batches"):
        return source  # type: ignore[no-any-return]
    if steps_per_epoch is None:
        raise TypeError("fit(epoch_batches, steps_per_epoch): give the steps per epoch")
    return _CallableSource(source, steps_per_epoch)
