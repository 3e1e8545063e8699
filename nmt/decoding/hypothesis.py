"""What every search returns, and the length penalty the searches share."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


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
