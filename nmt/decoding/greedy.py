"""Batched greedy decoding."""

from __future__ import annotations

import torch
from torch import Tensor

from nmt.models.seq2seq import Seq2Seq


def max_output_lengths(src_lengths: Tensor, max_len: int, max_len_ratio: float | None) -> Tensor:
    """Per-sentence output budget: min(max_len, ratio * source length + 10)."""
    limit = torch.full_like(src_lengths, max_len)
    if max_len_ratio is not None:
        relative = (src_lengths.float() * max_len_ratio).long() + 10
        limit = torch.minimum(limit, relative)
    return limit


@torch.no_grad()
def greedy_decode(
    model: Seq2Seq,
    src: Tensor,
    src_lengths: Tensor,
    *,
    bos_idx: int,
    eos_idx: int,
    max_len: int = 100,
    max_len_ratio: float | None = None,
) -> tuple[Tensor, list[Tensor | None]]:
    """Decode a batch, taking the most probable token at each step.

    Returns ids (B, T) - each row ends with ``eos_idx`` if it finished, and is
    padded with ``eos_idx`` after that - and the attention weights of each
    step ((B, S) each, or None for models without attention).
    """
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc)
    batch = src.size(0)
    limits = max_output_lengths(src_lengths, max_len, max_len_ratio).to(src.device)
    steps = int(limits.max().item()) + 1  # +1 for <eos>
    y = torch.full((batch,), bos_idx, dtype=torch.long, device=src.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    outputs: list[Tensor] = []
    attentions: list[Tensor | None] = []
    for t in range(steps):
        logits, state, attn = model.decode_step(y, state, enc)
        y = logits.argmax(-1)
        y = torch.where(finished | (limits <= t), torch.full_like(y, eos_idx), y)
        outputs.append(y)
        attentions.append(attn)
        finished |= y == eos_idx
        if t % 8 == 7 and bool(finished.all()):  # an occasional sync, not one per step
            break
    return torch.stack(outputs, dim=1), attentions
