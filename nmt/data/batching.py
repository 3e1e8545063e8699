"""Batches of padded id tensors, and a sampler that groups similar lengths.

Examples are ``(src_ids, tgt_ids)`` pairs of plain ints without bos/eos.
:func:`collate` pads them into a :class:`Batch`: the source as is, the target
as ``<bos> y1 .. yn <eos>``.  :class:`BucketBatchSampler` puts sentences of
similar length into the same batch so that little compute goes to padding;
with ``max_tokens`` it also caps each batch's padded token count.
:class:`EpochBatches` hands one process its share of each epoch's batches
(several processes under torchrun), from any batch position on, collated
in this process or in DataLoader workers.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar, cast

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Sampler

if TYPE_CHECKING:
    from nmt.config import TrainerConfig
    from nmt.data.vocab import Vocab

Example = tuple[list[int], list[int]]
_T = TypeVar("_T")


@dataclass(eq=False)
class Batch:
    """One padded batch.

    Attributes:
        src: ``(B, S)`` long, source ids padded with pad.
        src_lengths: ``(B,)`` long, real source tokens per row (>= 1).
        tgt: ``(B, T)`` long, ``<bos> y1 .. yn <eos>`` padded with pad.
        tgt_lengths: ``(B,)`` long, real target tokens per row, bos and eos included.
        indices: ``(B,)`` long, each row's position in the dataset.
        ntokens: tokens the decoder predicts (``sum(tgt_lengths - 1)``, eos included).
    """

    src: Tensor
    src_lengths: Tensor
    tgt: Tensor
    tgt_lengths: Tensor
    indices: Tensor
    ntokens: int

    @property
    def size(self) -> int:
        """Number of sentence pairs ``B``."""
        return int(self.src.shape[0])

    @property
    def num_tgt_tokens(self) -> int:
        return self.ntokens

    @property
    def src_mask(self) -> Tensor:
        """``(B, S)`` bool, True on real source tokens."""
        positions = torch.arange(self.src.shape[1], device=self.src.device)
        return positions.unsqueeze(0) < self.src_lengths.unsqueeze(1)

    @property
    def tgt_in(self) -> Tensor:
        """``(B, T-1)`` decoder inputs: ``<bos> y1 .. yn`` (plus padding)."""
        return self.tgt[:, :-1]

    @property
    def tgt_out(self) -> Tensor:
        """``(B, T-1)`` decoder targets: ``y1 .. yn <eos>`` (plus padding)."""
        return self.tgt[:, 1:]

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        """A copy with every tensor on ``device``."""
        return dataclasses.replace(
            self,
            src=self.src.to(device, non_blocking=non_blocking),
            src_lengths=self.src_lengths.to(device, non_blocking=non_blocking),
            tgt=self.tgt.to(device, non_blocking=non_blocking),
            tgt_lengths=self.tgt_lengths.to(device, non_blocking=non_blocking),
            indices=self.indices.to(device, non_blocking=non_blocking),
        )

    def pin_memory(self) -> Batch:
        """A copy in page-locked memory (used by DataLoader's ``pin_memory``)."""
        return dataclasses.replace(
            self,
            src=self.src.pin_memory(),
            src_lengths=self.src_lengths.pin_memory(),
            tgt=self.tgt.pin_memory(),
            tgt_lengths=self.tgt_lengths.pin_memory(),
            indices=self.indices.pin_memory(),
        )


def _pad_rows(rows: list[list[int]], pad_idx: int) -> Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([row + [pad_idx] * (width - len(row)) for row in rows], dtype=torch.long)


def collate(
    examples: Sequence[Example],
    indices: Sequence[int],
    *,
    pad_idx: int,
    bos_idx: int,
    eos_idx: int,
) -> Batch:
    """Pad examples into a :class:`Batch`; an empty source becomes ``[eos]``."""
    if not examples:
        raise ValueError("collate needs at least one example")
    if len(examples) != len(indices):
        raise ValueError(f"{len(examples)} examples but {len(indices)} indices")
    src_rows = [list(src) if len(src) else [eos_idx] for src, _ in examples]
    tgt_rows = [[bos_idx, *tgt, eos_idx] for _, tgt in examples]
    tgt_lengths = [len(row) for row in tgt_rows]
    return Batch(
        src=_pad_rows(src_rows, pad_idx),
        src_lengths=torch.tensor([len(row) for row in src_rows], dtype=torch.long),
        tgt=_pad_rows(tgt_rows, pad_idx),
        tgt_lengths=torch.tensor(tgt_lengths, dtype=torch.long),
        indices=torch.tensor(list(indices), dtype=torch.long),
        ntokens=sum(tgt_lengths) - len(tgt_lengths),
    )


class BucketBatchSampler(Sampler[list[int]]):
    """Yields lists of dataset indices whose lengths are close.

    With ``shuffle``: indices are permuted (seeded by ``seed + epoch``), cut
    into chunks of ``batch_size * bucket_factor``, each chunk is sorted by
    length and cut into batches, and the batch order is shuffled.  Without:
    all indices are sorted by length (stable) and cut into batches in order.
    The batches of an epoch are a pure function of ``(seed, epoch)``.

    With ``max_tokens``, ``lengths`` and ``tgt_lengths`` are the padded widths
    each example needs (source and target columns); a batch then also stays
    within ``rows * (widest source + widest target) <= max_tokens`` (sorting
    by source, then target width).  An example wider than that alone gets a
    batch of its own.
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        batch_size: int,
        *,
        shuffle: bool,
        seed: int = 0,
        bucket_factor: int = 50,
        max_tokens: int | None = None,
        tgt_lengths: Sequence[int] | np.ndarray | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if bucket_factor < 1:
            raise ValueError(f"bucket_factor must be >= 1, got {bucket_factor}")
        if max_tokens is not None and (max_tokens < 1 or tgt_lengths is None):
            raise ValueError("max_tokens must be >= 1 and needs tgt_lengths")
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.bucket_factor = bucket_factor
        self.max_tokens = max_tokens
        self.epoch = 0
        self.lengths = np.empty(0, dtype=np.int64)
        self.tgt_lengths: np.ndarray | None = None
        self.set_lengths(lengths, tgt_lengths, check=False)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch; together with the seed it fixes the order."""
        self.epoch = epoch

    def set_lengths(
        self,
        lengths: Sequence[int] | np.ndarray,
        tgt_lengths: Sequence[int] | np.ndarray | None,
        *,
        check: bool = True,
    ) -> None:
        """The examples' lengths (numpy arrays: a few bytes an example);
        ``check``: they must be new lengths for the same examples."""
        new = np.asarray(lengths, dtype=np.int64)
        if check and len(new) != len(self.lengths):
            raise ValueError(f"{len(new)} lengths for {len(self.lengths)} examples")
        tgt = None if tgt_lengths is None else np.asarray(tgt_lengths, dtype=np.int64)
        if tgt is not None and len(tgt) != len(new):
            raise ValueError(f"{len(new)} lengths but {len(tgt)} tgt_lengths")
        self.lengths, self.tgt_lengths = new, tgt

    def __len__(self) -> int:
        if self.max_tokens is not None:  # depends on the epoch's order
            return len(self.batches())
        return math.ceil(len(self.lengths) / self.batch_size)

    def __iter__(self) -> Iterator[list[int]]:
        for batch in self.batches():
            yield batch.tolist()

    def _cut(self, order: np.ndarray) -> list[np.ndarray]:
        if not len(order):
            return []
        if self.max_tokens is not None:
            return self._cut_by_tokens(order)
        return np.split(order, range(self.batch_size, len(order), self.batch_size))

    def _sort(self, indices: np.ndarray) -> np.ndarray:
        """``indices`` stably sorted by length (then target width with max_tokens)."""
        if self.max_tokens is None or self.tgt_lengths is None:
            return indices[np.argsort(self.lengths[indices], kind="stable")]
        return indices[np.lexsort((self.tgt_lengths[indices], self.lengths[indices]))]

    def _cut_by_tokens(self, order: np.ndarray) -> list[np.ndarray]:
        """Greedy cut of a sorted order: at most batch_size rows and max_tokens
        padded tokens per batch."""
        assert self.max_tokens is not None and self.tgt_lengths is not None
        starts: list[int] = []
        widest_src = widest_tgt = rows = 0
        src_widths = self.lengths[order].tolist()
        tgt_widths = self.tgt_lengths[order].tolist()
        for pos, (src_width, tgt_width) in enumerate(zip(src_widths, tgt_widths)):
            src, tgt = max(widest_src, src_width), max(widest_tgt, tgt_width)
            rows += 1
            if rows > 1 and (rows > self.batch_size or rows * (src + tgt) > self.max_tokens):
                starts.append(pos)
                rows, src, tgt = 1, src_width, tgt_width
            widest_src, widest_tgt = src, tgt
        return np.split(order, starts)

    def batches(self) -> list[np.ndarray]:
        """All batches of the current epoch (arrays of indices), in the order
        they are yielded."""
        count = len(self.lengths)
        if not self.shuffle:
            return self._cut(self._sort(np.arange(count)))
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        order = torch.randperm(count, generator=generator).numpy()
        chunk = self.batch_size * self.bucket_factor
        batches: list[np.ndarray] = []
        for start in range(0, count, chunk):
            batches.extend(self._cut(self._sort(order[start : start + chunk])))
        shuffled = torch.randperm(len(batches), generator=generator).tolist()
        return [batches[i] for i in shuffled]


def encode_pairs(
    src_sents: list[list[str]],
    tgt_sents: list[list[str]],
    src_vocab: Vocab,
    tgt_vocab: Vocab,
) -> list[Example]:
    """Token lists -> id pairs, without bos/eos (``collate`` adds them)."""
    if len(src_sents) != len(tgt_sents):
        raise ValueError(f"{len(src_sents)} source sentences but {len(tgt_sents)} targets")
    return [
        (
            src_vocab.encode(src, add_bos=False, add_eos=False),
            tgt_vocab.encode(tgt, add_bos=False, add_eos=False),
        )
        for src, tgt in zip(src_sents, tgt_sents)
    ]


def padded_widths(examples: Sequence[Example]) -> tuple[list[int], list[int]]:
    """The widths :func:`collate` pads each example to: source (an empty one
    becomes ``[eos]``) and ``<bos> target <eos>``."""
    return [max(len(s), 1) for s, _ in examples], [len(t) + 2 for _, t in examples]


def length_sorted_chunks(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """Indices sorted by length (stable), cut into runs of ``batch_size``: batches
    with little padding for inference, where the order does not matter."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def iterate_batches(
    examples: Sequence[Example],
    sampler: Iterator[list[int]] | Sampler[list[int]],
    *,
    pad_idx: int,
    bos_idx: int,
    eos_idx: int,
) -> Iterator[Batch]:
    """Collate the examples of each index list the sampler yields."""
    for batch_indices in sampler:
        yield collate(
            [examples[i] for i in batch_indices],
            batch_indices,
            pad_idx=pad_idx,
            bos_idx=bos_idx,
            eos_idx=eos_idx,
        )


def shard_batches(batches: Sequence[_T], rank: int, world_size: int) -> list[_T]:
    """Process ``rank``'s share of an epoch's batches: every ``world_size``-th one,
    from its rank on.  The last ``len % world_size`` batches are left out, so
    that every process takes the same number of steps; shares are disjoint."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    usable = len(batches) - len(batches) % world_size
    if usable == 0:
        raise ValueError(f"{len(batches)} batches cannot feed {world_size} processes")
    return list(batches[rank:usable:world_size])


class PairSource(Protocol):
    """Training pairs kept outside Python lists (``nmt.data.store.StoredPairs``):
    a batch's pairs come from :meth:`take`, sampled anew per ``seed`` when the
    source does subword regularization."""

    def __len__(self) -> int: ...

    def take(self, indices: np.ndarray, seed: int | None = None) -> list[Example]: ...


class _EpochShare(torch.utils.data.Dataset[Batch]):
    """Collated batches of one epoch's share, by position: what a DataLoader's
    worker processes build."""

    def __init__(
        self,
        examples: Sequence[Example] | PairSource,
        share: list[np.ndarray],
        seeds: Callable[[int], int],
        specials: dict[str, int],
    ) -> None:
        self.examples, self.share, self.seeds, self.specials = examples, share, seeds, specials

    def __len__(self) -> int:
        return len(self.share)

    def __getitem__(self, position: int) -> Batch:
        indices = self.share[position]
        take = getattr(self.examples, "take", None)
        if take is not None:
            pairs = take(indices, self.seeds(position))
        else:
            listed = cast(Sequence[Example], self.examples)
            pairs = [listed[i] for i in indices.tolist()]
        return collate(pairs, indices.tolist(), **self.specials)


class EpochBatches:
    """Collated batches of each epoch for one process (of ``world_size``).

    The order of an epoch comes from ``sampler`` (a pure function of its seed
    and the epoch), this process takes its :func:`shard_batches` share, and
    :meth:`batches` can start at any batch position (to resume mid-epoch).
    ``examples`` is a list of id pairs or a :class:`PairSource` (the
    memory-mapped store); batches are collated in this process, or with
    ``num_workers`` in that many DataLoader processes (pinned on CUDA with
    ``pin_memory``).  A source that samples subwords gets a seed per batch,
    a pure function of the sampler's seed, the epoch and the batch's place.
    """

    def __init__(
        self,
        examples: Sequence[Example] | PairSource,
        sampler: BucketBatchSampler,
        *,
        pad_idx: int,
        bos_idx: int,
        eos_idx: int,
        rank: int = 0,
        world_size: int = 1,
        num_workers: int = 0,
        pin_memory: bool = False,
    ) -> None:
        self.examples = examples
        self.sampler = sampler
        self.specials = {"pad_idx": pad_idx, "bos_idx": bos_idx, "eos_idx": eos_idx}
        self.rank = rank
        self.world_size = world_size
        self.num_workers = num_workers
        self.pin_memory = pin_memory
        self._cache: tuple[int, list[np.ndarray]] | None = None

    def indices(self, epoch: int) -> list[np.ndarray]:
        """This process's index arrays of ``epoch``, in training order."""
        if self._cache is None or self._cache[0] != epoch:
            self.sampler.set_epoch(epoch)
            share = shard_batches(self.sampler.batches(), self.rank, self.world_size)
            self._cache = (epoch, share)
        return self._cache[1]

    def num_batches(self, epoch: int) -> int:
        return len(self.indices(epoch))

    def batches(self, epoch: int, start: int = 0) -> Iterable[Batch]:
        """Batches of ``epoch`` from position ``start`` (0 = the first) on."""
        share = self.indices(epoch)

        def seed(position: int) -> int:
            place = (start + position) * self.world_size + self.rank
            return (self.sampler.seed * 1_000_003 + epoch * 100_003 + place) % 2**32

        dataset = _EpochShare(self.examples, share[start:], seed, self.specials)
        if self.num_workers == 0:
            return (dataset[i] for i in range(len(dataset)))
        return torch.utils.data.DataLoader(
            dataset,
            batch_size=None,
            shuffle=False,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
        )


def training_batches(
    examples: Sequence[Example] | PairSource,
    cfg: TrainerConfig,
    vocab: Vocab,
    *,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> EpochBatches:
    """The batches `nmt train` makes for one process: length buckets of at most
    ``trainer.batch_size`` sentences and ``trainer.max_tokens`` padded tokens,
    shuffled by ``trainer.seed``, collated in ``trainer.num_workers`` workers.
    ``examples``: id pairs in a list, or a source that knows its widths (the store)."""
    widths = getattr(examples, "widths", None)
    src_widths, tgt_widths = widths() if widths else padded_widths(examples)  # type: ignore[arg-type]
    sampler = BucketBatchSampler(
        src_widths,
        cfg.batch_size,
        shuffle=True,
        seed=cfg.seed,
        max_tokens=cfg.max_tokens,
        tgt_lengths=tgt_widths,
    )
    return EpochBatches(
        examples,
        sampler,
        pad_idx=vocab.pad_idx,
        bos_idx=vocab.bos_idx,
        eos_idx=vocab.eos_idx,
        rank=rank,
        world_size=world_size,
        num_workers=cfg.num_workers,
        pin_memory=pin_memory,
    )
