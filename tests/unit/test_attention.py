"""Invariants of nmt.models.attention: weights are a distribution over the real
source positions, padding never matters, precomputed keys change nothing."""

from __future__ import annotations

import pytest
import torch

from nmt.config import AttentionScore
from nmt.models.attention import AdditiveAttention, Attention, build_attention, masked_softmax

B, T, S, Q, K = 3, 4, 6, 5, 7
LENGTHS = torch.tensor([6, 3, 1])


def mask_of(lengths: torch.Tensor, size: int) -> torch.Tensor:
    return torch.arange(size)[None, :] < lengths[:, None]


def attention_modules() -> list[tuple[str, Attention, int]]:
    """(name, module, key size); dot needs the query size."""
    torch.manual_seed(0)
    return [
        ("additive", AdditiveAttention(query_dim=Q, key_dim=K, attn_dim=8), K),
        ("dot", build_attention(AttentionScore.dot, query_dim=Q, key_dim=Q), Q),
        ("general", build_attention(AttentionScore.general, query_dim=Q, key_dim=K), K),
        ("concat", build_attention(AttentionScore.concat, query_dim=Q, key_dim=K), K),
    ]


MODULES = attention_modules()
IDS = [name for name, _, _ in MODULES]


@pytest.mark.parametrize(("name", "attention", "key_dim"), MODULES, ids=IDS)
def test_weights_are_a_distribution_over_real_positions(
    name: str, attention: Attention, key_dim: int
) -> None:
    torch.manual_seed(1)
    memory, mask = torch.randn(B, S, key_dim), mask_of(LENGTHS, S)
    context, weights = attention(torch.randn(B, T, Q), memory, mask)
    assert context.shape == (B, T, key_dim)
    assert weights.shape == (B, T, S)
    torch.testing.assert_close(weights.sum(-1), torch.ones(B, T))
    assert torch.all(weights[~mask[:, None, :].expand(-1, T, -1)] == 0.0)
    assert torch.all(weights[mask[:, None, :].expand(-1, T, -1)] > 0.0)


@pytest.mark.parametrize(("name", "attention", "key_dim"), MODULES, ids=IDS)
def test_padded_memory_does_not_change_the_context(
    name: str, attention: Attention, key_dim: int
) -> None:
    torch.manual_seed(2)
    query, memory, mask = torch.randn(B, T, Q), torch.randn(B, S, key_dim), mask_of(LENGTHS, S)
    context, weights = attention(query, memory, mask)
    noisy = memory.masked_fill(~mask[:, :, None], 1e3)
    noisy_context, noisy_weights = attention(query, noisy, mask)
    torch.testing.assert_close(noisy_context, context)
    torch.testing.assert_close(noisy_weights, weights)


@pytest.mark.parametrize(("name", "attention", "key_dim"), MODULES, ids=IDS)
def test_one_query_at_a_time_equals_all_at_once(
    name: str, attention: Attention, key_dim: int
) -> None:
    torch.manual_seed(3)
    query, memory, mask = torch.randn(B, T, Q), torch.randn(B, S, key_dim), mask_of(LENGTHS, S)
    keys = attention.prepare(memory)
    assert (keys is not None) == attention.has_keys
    context, weights = attention(query, memory, mask, keys)
    for t in range(T):
        step_context, step_weights = attention(query[:, t : t + 1], memory, mask, keys)
        torch.testing.assert_close(step_context[:, 0], context[:, t])
        torch.testing.assert_close(step_weights[:, 0], weights[:, t])
    # Keys computed on the fly give the same result as precomputed ones.
    torch.testing.assert_close(attention(query, memory, mask)[0], context)


def test_masked_softmax_is_exactly_zero_on_padding() -> None:
    scores = torch.tensor([[[1.0, 2.0, 50.0]], [[-3.0, 0.0, 0.0]]])
    mask = torch.tensor([[True, True, False], [True, False, False]])
    weights = masked_softmax(scores, mask)
    assert weights[0, 0, 2].item() == 0.0
    assert weights[1, 0].tolist() == [1.0, 0.0, 0.0]
    torch.testing.assert_close(weights[0, 0, :2], torch.softmax(scores[0, 0, :2], -1))


def test_dot_score_refuses_mismatched_sizes() -> None:
    with pytest.raises(ValueError, match="query_dim == key_dim"):
        build_attention(AttentionScore.dot, query_dim=4, key_dim=8)
