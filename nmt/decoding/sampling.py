"""Batched sampling: temperature, top-k and nucleus (top-p) sampling.

Each step draws the next token from the model's distribution, sharpened or
flattened by a temperature, then cut to the ``top_k`` most probable tokens
and/or to the smallest set whose probability reaches ``top_p`` (Holtzman et
al. 2020, sec. 3.1).  Draws come from a ``torch.Generator``: the same seed,
input and batches give the same samples.
"""

from __future__ import annotations

import torch
from torch import Tensor

from nmt.decoding.greedy import TokenPicker, decode_loop, to_hypotheses
from nmt.decoding.hypothesis import Hypothesis
from nmt.models.interface import DecodingModel


def filter_logits(logits: Tensor, *, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """(B, V) logits with every token outside the top-k / top-p set at -inf.

    top_k = 0 and top_p = 1 keep everything; the most probable token is always kept.
    """
    if 0 < top_k < logits.size(-1):
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        ordered, index = logits.sort(dim=-1, descending=True)
        probs = ordered.softmax(dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # of the more probable tokens
        drop = mass_before >= top_p
        drop[:, 0] = False  # a top_p below float32's range must not drop every token
        ordered = ordered.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, index, ordered)
    return logits


def sampling_picker(
    *, temperature: float, top_k: int, top_p: float, generator: torch.Generator | None
) -> TokenPicker:
    """A token picker for :func:`decode_loop` that samples from the filtered distribution."""

    # the most probable token keeps logit 0, so that a tiny temperature (even one
    # below float32's range) sharpens towards argmax instead of giving NaNs
    scale = max(temperature, torch.finfo(torch.float32).tiny)

    def pick(log_probs: Tensor) -> Tensor:
        shifted = log_probs - log_probs.max(dim=-1, keepdim=True).values
        logits = filter_logits(shifted / scale, top_k=top_k, top_p=top_p)
        return torch.multinomial(logits.softmax(dim=-1), 1, generator=generator)[:, 0]

    return pick


def make_generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(seed)


@torch.no_grad()
def sample(
    model: DecodingModel,
    src: Tensor,
    src_lengths: Tensor,
    *,
    bos_idx: int,
    eos_idx: int,
    num_samples: int = 1,
    temperature: float = 1.0,
    top_k: int = 0,
    top_p: float = 1.0,
    generator: torch.Generator | None = None,
    max_len: int = 100,
    max_len_ratio: float | None = None,
    min_len: int = 0,
    length_penalty: float = 0.0,
    keep_attention: bool = False,
) -> list[list[Hypothesis]]:
    """``num_samples`` samples per sentence of src (B, S), best score first.

    Scores are the model's own log-probabilities (before temperature and
    filtering) over the length penalty, so samples rank like beam hypotheses.
    """
    rows = torch.arange(src.size(0), device=src.device).repeat_interleave(num_samples)
    src, src_lengths = src.index_select(0, rows), src_lengths.index_select(0, rows)
    pick = sampling_picker(temperature=temperature, top_k=top_k, top_p=top_p, generator=generator)
    ids, scores, attentions = decode_loop(
        model,
        src,
        src_lengths,
        bos_idx=bos_idx,
        eos_idx=eos_idx,
        max_len=max_len,
        max_len_ratio=max_len_ratio,
        min_len=min_len,
        pick=pick,
    )
    hyps = to_hypotheses(
        ids,
        scores,
        attentions,
        src_lengths,
        eos_idx=eos_idx,
        alpha=length_penalty,
        keep_attention=keep_attention,
    )
    groups = [hyps[i : i + num_samples] for i in range(0, len(hyps), num_samples)]
    return [sorted(group, key=lambda h: -h.score) for group in groups]
