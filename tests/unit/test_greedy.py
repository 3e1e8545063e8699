"""Tests for greedy decoding (nmt.decoding.greedy, through nmt.decoding.search):
batching invariance and length limits."""

from __future__ import annotations

import pytest
import torch

from nmt.config import CellType, DecodingConfig
from nmt.data.batching import Batch, collate
from nmt.data.pipeline import TextPipeline
from nmt.decoding.greedy import decode_loop, output_limits
from nmt.decoding.hypothesis import Hypothesis
from nmt.decoding.search import search
from nmt.models.seq2seq import Seq2Seq

Examples = list[tuple[list[int], list[int]]]


def never_stopping(model: Seq2Seq, eos: int) -> Seq2Seq:
    """Make ``<eos>`` all but impossible, so that only the length limits stop."""
    with torch.no_grad():
        model.decoder.output.bias[eos] -= 100.0
    return model.eval()


def source_batch(pipeline: TextPipeline, sources: list[list[int]]) -> Batch:
    vocab = pipeline.tgt_vocab
    return collate(
        [(s, []) for s in sources],
        list(range(len(sources))),
        pad_idx=pipeline.src_vocab.pad_idx,
        bos_idx=vocab.bos_idx,
        eos_idx=vocab.eos_idx,
    )


def decode(
    model: Seq2Seq, pipeline: TextPipeline, sources: list[list[int]], **limits: object
) -> list[Hypothesis]:
    """Greedy search, one hypothesis per source; no ratio limit unless given."""
    batch = source_batch(pipeline, sources)
    vocab = pipeline.tgt_vocab
    decoding = DecodingConfig(**{"max_len_ratio": None, **limits})  # type: ignore[arg-type]
    found = search(
        model,
        batch.src,
        batch.src_lengths,
        bos_idx=vocab.bos_idx,
        eos_idx=vocab.eos_idx,
        decoding=decoding,
        keep_attention=True,
    )
    assert all(len(hyps) == 1 for hyps in found)
    return [hyps[0] for hyps in found]


@pytest.mark.parametrize("cell", [CellType.lstm, CellType.gru])
def test_batch_equals_one_by_one_untrained(
    make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples, cell: CellType
) -> None:
    model = make_tiny_model(cell=cell, bidirectional=True).eval()
    check_batch_equals_one_by_one(model, tiny_pipeline, tiny_examples)


def test_batch_equals_one_by_one_trained(
    trained_tiny_model: Seq2Seq, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    lengths = check_batch_equals_one_by_one(trained_tiny_model, tiny_pipeline, tiny_examples)
    assert len(lengths) > 1  # rows finished at different steps, by their own <eos>


def check_batch_equals_one_by_one(
    model: Seq2Seq, pipeline: TextPipeline, examples: Examples
) -> set[int]:
    sources = [src for src, _ in examples[:12]]
    assert len({len(s) for s in sources}) > 1  # the batch really is padded
    hyps = decode(model, pipeline, sources, max_len=15, max_len_ratio=None)
    for src, hyp in zip(sources, hyps, strict=True):
        (alone,) = decode(model, pipeline, [src], max_len=15, max_len_ratio=None)
        assert hyp.ids == alone.ids
        assert hyp.score == pytest.approx(alone.score, abs=1e-5)
    return {len(hyp.ids) for hyp in hyps}


def test_rows_are_eos_padded_after_they_finish(
    trained_tiny_model: Seq2Seq, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    """The step loop's raw ids, which greedy and sampling cut at the first <eos>."""
    eos = tiny_pipeline.tgt_vocab.eos_idx
    batch = source_batch(tiny_pipeline, [s for s, _ in tiny_examples[:12]])
    out, _, _ = decode_loop(
        trained_tiny_model,
        batch.src,
        batch.src_lengths,
        bos_idx=tiny_pipeline.tgt_vocab.bos_idx,
        eos_idx=eos,
        max_len=15,
    )
    for row in out.tolist():
        assert eos in row
        first = row.index(eos)
        assert all(tok == eos for tok in row[first:])


@pytest.mark.parametrize("max_len", [1, 3, 8])
def test_max_len_is_respected(
    make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples, max_len: int
) -> None:
    eos = tiny_pipeline.tgt_vocab.eos_idx
    model = never_stopping(make_tiny_model(), eos)  # never stops by itself
    sources = [s for s, _ in tiny_examples[:6]]
    hyps = decode(model, tiny_pipeline, sources, max_len=max_len, max_len_ratio=None)
    assert len(hyps) == len(sources)
    for hyp in hyps:  # max_len tokens, then the forced <eos> (cut off, but scored)
        assert len(hyp.ids) == max_len
        assert eos not in hyp.ids
        assert hyp.score > -float("inf")
        assert hyp.attention is None  # sutskever has no attention


def test_max_len_ratio_limits_each_row(
    make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    eos = tiny_pipeline.tgt_vocab.eos_idx
    model = never_stopping(make_tiny_model(), eos)
    sources = [[5], [5, 6, 7, 8, 9, 10]]
    hyps = decode(model, tiny_pipeline, sources, max_len=100, max_len_ratio=0.5)
    assert all(eos not in hyp.ids for hyp in hyps)
    assert [len(hyp.ids) for hyp in hyps] == [int(1 * 0.5) + 10, int(6 * 0.5) + 10]


def test_output_limits() -> None:
    lengths = torch.tensor([1, 10, 50])
    assert output_limits(lengths, 100, None).tolist() == [100, 100, 100]
    assert output_limits(lengths, 100, 2.0).tolist() == [12, 30, 100]
    assert output_limits(lengths, 20, 1.5).tolist() == [11, 20, 20]
    assert output_limits(lengths, 100, 2.0, min_len=20).tolist() == [20, 30, 100]
