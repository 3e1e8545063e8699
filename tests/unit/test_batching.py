"""Tests for nmt.data.batching."""

from __future__ import annotations

import random

import pytest
import torch

from nmt.config import VocabConfig
from nmt.data.batching import (
    Batch,
    BucketBatchSampler,
    EpochBatches,
    collate,
    encode_pairs,
    iterate_batches,
    length_sorted_chunks,
    shard_batches,
)
from nmt.data.vocab import Vocab

PAD, BOS, EOS = 1, 2, 3
SPECIALS = {"pad_idx": PAD, "bos_idx": BOS, "eos_idx": EOS}


def make_examples(count: int, seed: int = 0) -> list[tuple[list[int], list[int]]]:
    rng = random.Random(seed)
    return [
        (
            [rng.randrange(4, 50) for _ in range(rng.randrange(1, 30))],
            [rng.randrange(4, 50) for _ in range(rng.randrange(0, 30))],
        )
        for _ in range(count)
    ]


def test_collate_padding_lengths_and_masks() -> None:
    examples = [([5, 6, 7], [8, 9]), ([10], [11, 12, 13, 14])]
    batch = collate(examples, [4, 9], **SPECIALS)
    assert batch.src.tolist() == [[5, 6, 7], [10, PAD, PAD]]
    assert batch.src_lengths.tolist() == [3, 1]
    assert batch.src_mask.tolist() == [[True, True, True], [True, False, False]]
    assert batch.tgt.tolist() == [
        [BOS, 8, 9, EOS, PAD, PAD],
        [BOS, 11, 12, 13, 14, EOS],
    ]
    assert batch.tgt_lengths.tolist() == [4, 6]
    assert batch.tgt_in.tolist() == [[BOS, 8, 9, EOS, PAD], [BOS, 11, 12, 13, 14]]
    assert batch.tgt_out.tolist() == [[8, 9, EOS, PAD, PAD], [11, 12, 13, 14, EOS]]
    assert batch.indices.tolist() == [4, 9]
    assert batch.ntokens == batch.num_tgt_tokens == 3 + 5
    assert batch.size == 2
    for tensor in (batch.src, batch.src_lengths, batch.tgt, batch.tgt_lengths, batch.indices):
        assert tensor.dtype == torch.long


def test_collate_invariants_random() -> None:
    examples = make_examples(40)
    batch = collate(examples, list(range(40)), **SPECIALS)
    assert (batch.src_mask.sum(1) == batch.src_lengths).all()
    assert ((batch.src != PAD) == batch.src_mask).all()  # ids >= 4 never equal pad
    tgt_real = batch.tgt != PAD
    assert (tgt_real.sum(1) == batch.tgt_lengths).all()
    assert (batch.tgt[:, 0] == BOS).all()
    rows = torch.arange(batch.size)
    assert (batch.tgt[rows, batch.tgt_lengths - 1] == EOS).all()
    assert batch.ntokens == int((batch.tgt_out != PAD).sum())


def test_empty_source_and_target() -> None:
    batch = collate([([], []), ([7, 8], [9])], [0, 1], **SPECIALS)
    assert batch.src.tolist() == [[EOS, PAD], [7, 8]]
    assert batch.src_lengths.tolist() == [1, 2]
    assert batch.tgt.tolist() == [[BOS, EOS, PAD], [BOS, 9, EOS]]
    assert batch.tgt_lengths.tolist() == [2, 3]


def test_collate_rejects_bad_input() -> None:
    with pytest.raises(ValueError):
        collate([], [], **SPECIALS)
    with pytest.raises(ValueError):
        collate([([4], [5])], [0, 1], **SPECIALS)


def test_batch_to_and_pin_memory() -> None:
    batch = collate(make_examples(3), [0, 1, 2], **SPECIALS)
    moved = batch.to("cpu")
    assert isinstance(moved, Batch) and moved.ntokens == batch.ntokens
    assert torch.equal(moved.src, batch.src)
    if torch.cuda.is_available():
        pinned = batch.pin_memory()
        assert pinned.src.is_pinned()
        assert pinned.to("cuda", non_blocking=True).src.device.type == "cuda"


def epoch_batches(sampler: BucketBatchSampler, epoch: int) -> list[list[int]]:
    sampler.set_epoch(epoch)
    return list(sampler)


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize(("count", "batch_size"), [(103, 8), (64, 8), (5, 10), (0, 4)])
def test_every_index_once_per_epoch(shuffle: bool, count: int, batch_size: int) -> None:
    lengths = [random.Random(i).randrange(1, 40) for i in range(count)]
    sampler = BucketBatchSampler(lengths, batch_size, shuffle=shuffle, seed=3, bucket_factor=2)
    for epoch in range(3):
        batches = epoch_batches(sampler, epoch)
        assert len(batches) == len(sampler)
        assert sorted(i for batch in batches for i in batch) == list(range(count))
        assert all(1 <= len(batch) <= batch_size for batch in batches)


def test_deterministic_per_seed_and_epoch() -> None:
    lengths = [random.Random(i).randrange(1, 40) for i in range(300)]

    def run(seed: int, epoch: int) -> list[list[int]]:
        sampler = BucketBatchSampler(lengths, 16, shuffle=True, seed=seed, bucket_factor=4)
        return epoch_batches(sampler, epoch)

    assert run(1, 0) == run(1, 0)
    assert run(1, 1) == run(1, 1)
    assert run(1, 0) != run(1, 1)
    assert run(1, 0) != run(2, 0)


def test_no_shuffle_sorted_by_length() -> None:
    lengths = [5, 1, 3, 1, 9, 2]
    sampler = BucketBatchSampler(lengths, 2, shuffle=False)
    assert list(sampler) == [[1, 3], [5, 2], [0, 4]]  # stable among equal lengths


def padding_fraction(batches: list[list[int]], lengths: list[int]) -> float:
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    return 1 - sum(lengths) / padded


def test_bucketing_reduces_padding() -> None:
    rng = random.Random(0)
    lengths = [rng.randrange(1, 60) for _ in range(2000)]
    order = list(range(len(lengths)))
    rng.shuffle(order)
    random_batches = [order[i : i + 32] for i in range(0, len(order), 32)]
    bucketed = list(BucketBatchSampler(lengths, 32, shuffle=True, seed=0, bucket_factor=10))
    assert padding_fraction(bucketed, lengths) < 0.5 * padding_fraction(random_batches, lengths)


def test_encode_pairs_and_iterate_batches() -> None:
    src_vocab = Vocab.build([["a", "b", "c"]], VocabConfig(min_freq=1))
    tgt_vocab = Vocab.build([["x", "y"]], VocabConfig(min_freq=1))
    pairs = encode_pairs(
        [["a", "b"], ["c", "q"], []], [["x"], ["y", "x"], ["y"]], src_vocab, tgt_vocab
    )
    assert pairs[0] == ([src_vocab.stoi["a"], src_vocab.stoi["b"]], [tgt_vocab.stoi["x"]])
    assert pairs[1][0][1] == src_vocab.unk_idx
    assert pairs[2][0] == []
    with pytest.raises(ValueError):
        encode_pairs([["a"]], [], src_vocab, tgt_vocab)
    sampler = BucketBatchSampler([len(s) for s, _ in pairs], 2, shuffle=False)
    batches = list(
        iterate_batches(
            pairs,
            sampler,
            pad_idx=tgt_vocab.pad_idx,
            bos_idx=tgt_vocab.bos_idx,
            eos_idx=tgt_vocab.eos_idx,
        )
    )
    assert [b.indices.tolist() for b in batches] == [[2, 0], [1]]
    assert batches[0].src[0].tolist() == [tgt_vocab.eos_idx, tgt_vocab.pad_idx]
    decoded = tgt_vocab.decode(batches[1].tgt_out[0].tolist())
    assert decoded == ["y", "x"]


# ------------------------------------------------------------- tokens, shares, positions


def widths(examples: list[tuple[list[int], list[int]]]) -> tuple[list[int], list[int]]:
    """Padded source and target columns per example, as collate() makes them."""
    return [max(len(s), 1) for s, _ in examples], [len(t) + 2 for _, t in examples]


@pytest.mark.parametrize("shuffle", [True, False])
@pytest.mark.parametrize("max_tokens", [60, 200, 1000])
def test_max_tokens_caps_the_padded_tokens(shuffle: bool, max_tokens: int) -> None:
    examples = make_examples(300, seed=4)
    src_w, tgt_w = widths(examples)
    sampler = BucketBatchSampler(
        src_w, 16, shuffle=shuffle, seed=1, max_tokens=max_tokens, tgt_lengths=tgt_w
    )
    for epoch in range(2):
        batches = epoch_batches(sampler, epoch)
        assert len(batches) == len(sampler)
        assert sorted(i for b in batches for i in b) == list(range(300))
        for indices in batches:
            assert len(indices) <= 16
            batch = collate([examples[i] for i in indices], indices, **SPECIALS)
            padded = batch.src.numel() + batch.tgt.numel()
            assert padded <= max_tokens or len(indices) == 1  # one long pair: alone


def test_max_tokens_packs_short_sentences_more() -> None:
    lengths = [2] * 50 + [20] * 50
    sampler = BucketBatchSampler(lengths, 100, shuffle=False, max_tokens=100, tgt_lengths=lengths)
    sizes = [len(b) for b in sampler]
    assert sizes[0] == 25 and sizes[-1] == 2  # 25 * (2 + 2) and 2 * (20 + 20)


def test_max_tokens_needs_target_lengths() -> None:
    with pytest.raises(ValueError, match="tgt_lengths"):
        BucketBatchSampler([1, 2], 2, shuffle=False, max_tokens=10)


@pytest.mark.parametrize("world", [1, 2, 3])
def test_shards_are_disjoint_equal_and_deterministic(world: int) -> None:
    batches = [[i] for i in range(11)]
    shares = [shard_batches(batches, rank, world) for rank in range(world)]
    assert len({len(s) for s in shares}) == 1 and len(shares[0]) == 11 // world
    flat = [b[0] for s in shares for b in s]
    assert len(flat) == len(set(flat)) == 11 - 11 % world
    assert shares == [shard_batches(batches, rank, world) for rank in range(world)]
    with pytest.raises(ValueError):
        shard_batches(batches, world, world)


def test_epoch_batches_resume_from_a_position() -> None:
    examples = make_examples(100, seed=2)
    sampler = BucketBatchSampler([len(s) for s, _ in examples], 8, shuffle=True, seed=5)
    source = EpochBatches(examples, sampler, **SPECIALS)
    full = [b.indices.tolist() for b in source.batches(3)]
    assert len(full) == source.num_batches(3) == 13
    assert [b.indices.tolist() for b in source.batches(3, start=5)] == full[5:]
    assert full != [b.indices.tolist() for b in source.batches(4)]
    ranks = [EpochBatches(examples, sampler, **SPECIALS, rank=r, world_size=2) for r in (0, 1)]
    shares = [[b.indices.tolist() for b in r.batches(3)] for r in ranks]
    assert shares[0] == full[0:12:2] and shares[1] == full[1:12:2]


def test_length_sorted_chunks_cover_every_index_once_by_length() -> None:
    lengths = [5, 1, 3, 1, 4, 2, 3]
    chunks = length_sorted_chunks(lengths, 3)
    assert [len(c) for c in chunks] == [3, 3, 1]
    flat = [i for c in chunks for i in c]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)
    assert flat[:2] == [1, 3]  # equal lengths keep their order
    assert length_sorted_chunks([], 4) == []
