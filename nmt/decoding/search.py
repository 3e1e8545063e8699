"""One entry point for every decoding strategy: ``search(model, src, ...)``."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from nmt.config import DecodingConfig, DecodingStrategy
from nmt.decoding.beam import beam_search
from nmt.decoding.greedy import decode_loop, to_hypotheses
from nmt.decoding.hypothesis import Hypothesis
from nmt.decoding.sampling import make_generator, sample
from nmt.models.interface import DecodingModel


@torch.no_grad()
def search(
    model: DecodingModel,
    src: Tensor,
    src_lengths: Tensor,
    *,
    bos_idx: int,
    eos_idx: int,
    decoding: DecodingConfig,
    keep_attention: bool = False,
    generator: torch.Generator | None = None,
) -> list[list[Hypothesis]]:
    """Decode a batch src (B, S) as ``decoding.strategy`` says.

    Returns, per sentence, its hypotheses best first: one for greedy,
    ``n_best`` for beam and sample.  ``keep_attention`` fills
    ``Hypothesis.attention`` for attention models.  Sampling draws from
    ``generator``, or from a new one seeded with ``decoding.seed``: pass one
    generator to every batch of a corpus so that batches differ.
    """
    limits: dict[str, Any] = {
        "bos_idx": bos_idx,
        "eos_idx": eos_idx,
        "max_len": decoding.max_len,
        "max_len_ratio": decoding.max_len_ratio,
        "min_len": decoding.min_len,
    }
    if decoding.strategy == DecodingStrategy.greedy:
        return _greedy(model, src, src_lengths, decoding, keep_attention, limits)
    if decoding.strategy == DecodingStrategy.beam:
        return beam_search(
            model,
            src,
            src_lengths,
            beam_size=decoding.beam_size,
            n_best=decoding.n_best,
            length_penalty=decoding.length_penalty,
            keep_attention=keep_attention,
            **limits,
        )
    return sample(
        model,
        src,
        src_lengths,
        num_samples=decoding.n_best,
        temperature=decoding.temperature,
        top_k=decoding.top_k,
        top_p=decoding.top_p,
        generator=generator or make_generator(decoding.seed, src.device),
        length_penalty=decoding.length_penalty,
        keep_attention=keep_attention,
        **limits,
    )


def _greedy(
    model: DecodingModel,
    src: Tensor,
    src_lengths: Tensor,
    decoding: DecodingConfig,
    keep_attention: bool,
    limits: dict[str, Any],
) -> list[list[Hypothesis]]:
    """The argmax step loop, one hypothesis per sentence."""
    ids, scores, attentions = decode_loop(model, src, src_lengths, **limits)
    hyps = to_hypotheses(
        ids,
        scores,
        attentions,
        src_lengths,
        eos_idx=limits["eos_idx"],
        alpha=decoding.length_penalty,
        keep_attention=keep_attention,
    )
    return [[h] for h in hyps]
