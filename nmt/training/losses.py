"""The training loss: token NLL, optionally label-smoothed."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def token_losses(
    logits: torch.Tensor, target: torch.Tensor, pad: int, smoothing: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed NLL and summed training loss over the non-pad targets (float32).

    With label smoothing eps (Szegedy et al. 2016, sec. 7) the training loss is
    ``(1 - eps) * NLL + eps * mean over the vocabulary of -log p``, as in
    ``F.cross_entropy(label_smoothing=eps)``; without, it is the NLL.
    """
    lprobs = F.log_softmax(logits.reshape(-1, logits.size(-1)).float(), dim=-1)
    flat = target.reshape(-1)
    nll = F.nll_loss(lprobs, flat, ignore_index=pad, reduction="sum")
    if smoothing == 0.0:
        return nll, nll
    uniform = -(lprobs.mean(dim=-1) * (flat != pad)).sum()
    return nll, (1.0 - smoothing) * nll + smoothing * uniform
