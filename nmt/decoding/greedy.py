"""Batched greedy decoding: the step loop that sampling shares, and the output limits."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from nmt.decoding.hypothesis import Hypothesis, length_penalty
from nmt.models.interface import DecodingModel

# Picks the next token of every row from its log-probabilities: (B, V) -> (B,).
TokenPicker = Callable[[Tensor], Tensor]


def output_limits(
    src_lengths: Tensor, max_len: int, max_len_ratio: float | None, min_len: int = 0
) -> Tensor:
    """Tokens each sentence may produce before ``<eos>`` is forced, (B,) from
    src_lengths (B,): min(max_len, int(ratio * source length) + 10), at least min_len."""
    limit = torch.full_like(src_lengths, max_len)
    if max_len_ratio is not None:
        relative = (src_lengths.float() * max_len_ratio).long() + 10
        limit = torch.minimum(limit, relative)
    return limit.clamp(min=min_len)


def argmax_picker(log_probs: Tensor) -> Tensor:
    return log_probs.argmax(-1)


@torch.no_grad()
def decode_loop(
    model: DecodingModel,
    src: Tensor,
    src_lengths: Tensor,
    *,
    bos_idx: int,
    eos_idx: int,
    max_len: int = 100,
    max_len_ratio: float | None = None,
    min_len: int = 0,
    pick: TokenPicker = argmax_picker,
) -> tuple[Tensor, Tensor, list[Tensor | None]]:
    """Run the decoder one token per step, each row choosing by ``pick``.

    ``<eos>`` is forbidden before ``min_len`` tokens and forced at a row's
    length limit.  Returns ids (B, T) - a finished row ends with ``eos_idx``
    and is padded with it - the summed log-probabilities (B,) of each row's
    tokens up to its first ``<eos>`` included, and each step's attention
    ((B, S), or None for models without attention).
    """
    enc = model.encode(src, src_lengths)
    batch = src.size(0)
    limits = output_limits(src_lengths, max_len, max_len_ratio, min_len).to(src.device)
    steps = int(limits.max().item()) + 1  # +1 for <eos>
    state = model.init_state(enc, steps)
    y = torch.full((batch,), bos_idx, dtype=torch.long, device=src.device)
    eos = torch.full_like(y, eos_idx)
    finished = torch.zeros(batch, dtype=torch.bool, device=src.device)
    scores = torch.zeros(batch, device=src.device)
    outputs: list[Tensor] = []
    attentions: list[Tensor | None] = []
    for t in range(steps):
        logits, state, attn = model.decode_step(y, state, enc)
        log_probs = torch.log_softmax(logits.float(), dim=-1)
        if t < min_len:
            log_probs[:, eos_idx] = float("-inf")
        y = torch.where(finished | (limits <= t), eos, pick(log_probs))
        step_scores = log_probs.gather(1, y[:, None])[:, 0]
        scores += torch.where(finished, torch.zeros_like(step_scores), step_scores)
        outputs.append(y)
        attentions.append(attn)
        finished |= y == eos_idx
        if t % 8 == 7 and bool(finished.all()):  # an occasional sync, not one per step
            break
    return torch.stack(outputs, dim=1), scores, attentions


def to_hypotheses(
    ids: Tensor,
    scores: Tensor,
    attentions: list[Tensor | None],
    src_lengths: Tensor,
    *,
    eos_idx: int,
    alpha: float = 0.0,
    keep_attention: bool = False,
) -> list[Hypothesis]:
    """One Hypothesis per row of a :func:`decode_loop` result (ids cut at ``<eos>``)."""
    stacked = None
    if keep_attention and attentions and attentions[0] is not None:
        stacked = torch.stack([a for a in attentions if a is not None], dim=1).float().cpu()
    hyps = []
    for row, (tokens, score, src_len) in enumerate(
        zip(ids.tolist(), scores.tolist(), src_lengths.tolist())
    ):
        length = tokens.index(eos_idx) if eos_idx in tokens else len(tokens)
        attn = None if stacked is None else stacked[row, :length, :src_len]
        penalty = length_penalty(length + 1, alpha)
        hyps.append(Hypothesis(ids=tokens[:length], score=score / penalty, attention=attn))
    return hyps
