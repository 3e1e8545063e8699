"""Attention over the encoder states: additive (Bahdanau) and dot / general /
concat (Luong).

Every module scores queries against source positions, masks the padding and
mixes the encoder states with the resulting weights:

- ``prepare(memory)``: work that depends only on the source (the projected
  keys ``U_a h_j`` of additive attention).  A decoder calls it once per batch,
  in ``init_state``, and hands the result back at every step; ``None`` means
  there is nothing to precompute.
- ``forward(query, memory, mask, keys)``: weights and context vectors for
  ``T`` queries at once; a single decoder step passes ``T = 1``.

Shapes: query (B, T, Q), memory (B, S, K), mask (B, S) (True on real source
tokens), keys (B, S, A) or None; context (B, T, K), weights (B, T, S).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.config import AttentionScore


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last axis of scores (B, T, S), with weight exactly 0 where
    mask (B, S) is False.  Each row must have at least one True position."""
    scores = scores.masked_fill(~mask[:, None, :], float("-inf"))
    return torch.softmax(scores, dim=-1)


class Attention(nn.Module):
    """Shared part: scores -> masked softmax -> weighted sum of the memory."""

    has_keys = False  # whether prepare() returns a tensor a decoder should keep

    def prepare(self, memory: Tensor) -> Tensor | None:
        """Per-batch precomputation from memory (B, S, K); None when there is none."""
        return None

    def score(self, query: Tensor, memory: Tensor, keys: Tensor | None) -> Tensor:
        """Unnormalised scores (B, T, S)."""
        raise NotImplementedError

    def forward(
        self, query: Tensor, memory: Tensor, mask: Tensor, keys: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """query (B, T, Q) -> context (B, T, K), weights (B, T, S)."""
        weights = masked_softmax(self.score(query, memory, keys), mask)
        return torch.bmm(weights, memory), weights


class AdditiveAttention(Attention):
    """e_tj = v_a^T tanh(W_a q_t + U_a h_j): Bahdanau et al. 2015 (sec. 3.1 and
    appendix A.1.2).  Luong et al. 2015's ``concat`` score (sec. 3.1, eq. 8),
    v_a^T tanh(W_a [h_t; h_s]), is the same function with W_a split in two.

    ``U_a h_j`` does not depend on the decoder, so ``prepare`` computes it once
    per batch: keys (B, S, A).  The step cost is then W_a q_t plus a tanh over
    (B, T, S, A).
    """

    has_keys = True

    def __init__(self, *, query_dim: int, key_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_dim, attn_dim, bias=False)  # W_a
        self.key_proj = nn.Linear(key_dim, attn_dim)  # U_a (the bias is shared by all terms)
        self.energy = nn.Linear(attn_dim, 1, bias=False)  # v_a

    def prepare(self, memory: Tensor) -> Tensor:
        return self.key_proj(memory)

    def score(self, query: Tensor, memory: Tensor, keys: Tensor | None) -> Tensor:
        if keys is None:
            keys = self.prepare(memory)
        hidden = torch.tanh(self.query_proj(query)[:, :, None, :] + keys[:, None, :, :])
        return self.energy(hidden).squeeze(-1)  # (B, T, S, A) -> (B, T, S)


class DotAttention(Attention):
    """score(h_t, h_s) = h_t^T h_s: Luong et al. 2015, sec. 3.1 (eq. 8); Q == K."""

    def score(self, query: Tensor, memory: Tensor, keys: Tensor | None) -> Tensor:
        return torch.bmm(query, memory.transpose(1, 2))


class GeneralAttention(Attention):
    """score(h_t, h_s) = h_t^T W_a h_s: Luong et al. 2015, sec. 3.1 (eq. 8).

    W_a is applied to the query (B, T, Q) -> (B, T, K) rather than to the
    memory: the same scores, and nothing to store per batch.
    """

    def __init__(self, *, query_dim: int, key_dim: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_dim, key_dim, bias=False)  # W_a^T

    def score(self, query: Tensor, memory: Tensor, keys: Tensor | None) -> Tensor:
        return torch.bmm(self.query_proj(query), memory.transpose(1, 2))


def build_attention(score: AttentionScore, *, query_dim: int, key_dim: int) -> Attention:
    """A Luong et al. 2015 score by name; ``concat`` uses an additive layer of size Q."""
    if score == AttentionScore.dot:
        if query_dim != key_dim:
            raise ValueError(f"dot attention needs query_dim == key_dim ({query_dim}, {key_dim})")
        return DotAttention()
    if score == AttentionScore.general:
        return GeneralAttention(query_dim=query_dim, key_dim=key_dim)
    return AdditiveAttention(query_dim=query_dim, key_dim=key_dim, attn_dim=query_dim)
