"""Where the trainer's batches come from: the batches of each epoch, from a
batch position on (a resumed run starts mid-epoch)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from nmt.data.batching import Batch


class BatchSource(Protocol):
    """The batches of each epoch, from a batch position on (to resume mid-epoch);
    :class:`nmt.data.batching.EpochBatches` is the one `nmt train` uses."""

    def num_batches(self, epoch: int) -> int: ...

    def batches(self, epoch: int, start: int) -> Iterable[Batch]: ...
