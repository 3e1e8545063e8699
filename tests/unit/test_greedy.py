"""Tests for nmt.decoding.greedy: batching invariance and length limits."""

from __future__ import annotations

import pytest
import torch

from nmt.config import CellType
from nmt.data.batching import collate
from nmt.data.pipeline import TextPipeline
from nmt.decoding.greedy import greedy_decode, max_output_lengths
from nmt.models.seq2seq import Seq2Seq

Examples = list[tuple[list[int], list[int]]]


def until_eos(row: list[int], eos: int) -> list[int]:
    """The ids up to and including the first eos (all of them if there is none)."""
    return row[: row.index(eos) + 1] if eos in row else row


def never_stopping(model: Seq2Seq, eos: int) -> Seq2Seq:
    """Make ``<eos>`` all but impossible, so that only the length limits stop."""
    with torch.no_grad():
        model.decoder.output.bias[eos] -= 100.0
    return model.eval()


def decode(model: Seq2Seq, pipeline: TextPipeline, sources: list[list[int]], **kwargs):
    vocab = pipeline.tgt_vocab
    batch = collate(
        [(s, []) for s in sources],
        list(range(len(sources))),
        pad_idx=pipeline.src_vocab.pad_idx,
        bos_idx=vocab.bos_idx,
        eos_idx=vocab.eos_idx,
    )
    return greedy_decode(
        model, batch.src, batch.src_lengths, bos_idx=vocab.bos_idx, eos_idx=vocab.eos_idx, **kwargs
    )


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
    eos = pipeline.tgt_vocab.eos_idx
    sources = [src for src, _ in examples[:12]]
    assert len({len(s) for s in sources}) > 1  # the batch really is padded
    out, _ = decode(model, pipeline, sources, max_len=15, max_len_ratio=None)
    rows = [until_eos(r, eos) for r in out.tolist()]
    for src, row in zip(sources, rows, strict=True):
        alone, _ = decode(model, pipeline, [src], max_len=15, max_len_ratio=None)
        assert row == until_eos(alone[0].tolist(), eos)
    return {len(row) for row in rows}


def test_rows_are_eos_padded_after_they_finish(
    trained_tiny_model: Seq2Seq, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    eos = tiny_pipeline.tgt_vocab.eos_idx
    out, _ = decode(
        trained_tiny_model, tiny_pipeline, [s for s, _ in tiny_examples[:12]], max_len=15
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
    out, attentions = decode(model, tiny_pipeline, sources, max_len=max_len, max_len_ratio=None)
    assert out.shape == (len(sources), max_len + 1)  # max_len tokens, then <eos>
    assert (out[:, -1] == eos).all()
    assert (out[:, :-1] != eos).all()
    assert len(attentions) == out.size(1)
    assert all(a is None for a in attentions)  # sutskever has no attention


def test_max_len_ratio_limits_each_row(
    make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    eos = tiny_pipeline.tgt_vocab.eos_idx
    model = never_stopping(make_tiny_model(), eos)
    sources = [[5], [5, 6, 7, 8, 9, 10]]
    out, _ = decode(model, tiny_pipeline, sources, max_len=100, max_len_ratio=0.5)
    produced = [until_eos(r, eos)[:-1] for r in out.tolist()]
    assert [len(p) for p in produced] == [int(1 * 0.5) + 10, int(6 * 0.5) + 10]


def test_max_output_lengths() -> None:
    lengths = torch.tensor([1, 10, 50])
    assert max_output_lengths(lengths, 100, None).tolist() == [100, 100, 100]
    assert max_output_lengths(lengths, 100, 2.0).tolist() == [12, 30, 100]
    assert max_output_lengths(lengths, 20, 1.5).tolist() == [11, 20, 20]
