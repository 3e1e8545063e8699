"""What every search returns, and the helpers the searches share."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from torch import Tensor

from nmt.models.encoder import EncoderOutput


@dataclass
class Hypothesis:
    """One output of a search.

    ids: output token ids, without ``<bos>`` and ``<eos>``.
    score: log-probability of ids + ``<eos>`` (the model's own distribution,
        whatever the search sampled from), divided by the length penalty.
    attention: (T, S) weights on the CPU, T = len(ids), S = the source length;
        None for models without attention or when the search did not keep it.
    """

    ids: list[int]
    score: float
    attention: Tensor | None = None


def length_penalty(length: int, alpha: float) -> float:
    """GNMT length penalty lp(Y) = ((5 + |Y|) / 6)^alpha (Wu et al. 2016, eq. 14);
    scores are log P(Y|X) / lp(Y).  alpha = 0 gives 1 (no penalty)."""
    return ((5.0 + length) / 6.0) ** alpha if alpha else 1.0


# Fields of EncoderOutput laid out like RNN states, batch at dim 1; the rest have it at dim 0.
_BATCH_AT_DIM_1 = frozenset({"hidden", "cell"})


def select_encoder_rows(enc: EncoderOutput, index: Tensor) -> EncoderOutput:
    """An EncoderOutput holding batch rows ``index`` (repeats allowed): expands a
    batch to B*K rows for beam search, or drops sentences that are done."""
    changes = {}
    for f in dataclasses.fields(enc):
        value = getattr(enc, f.name)
        if isinstance(value, Tensor):
            dim = 1 if f.name in _BATCH_AT_DIM_1 else 0
            changes[f.name] = value.index_select(dim, index)
    return dataclasses.replace(enc, **changes)
