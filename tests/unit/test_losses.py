"""Tests for nmt.training.losses: token NLL and label smoothing."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from nmt.training.losses import token_losses

PAD = 0


def logits_and_target() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    logits = torch.randn(3, 5, 11)
    target = torch.randint(1, 11, (3, 5))
    target[0, 3:] = PAD
    target[2, 1:] = PAD
    return logits, target


def test_without_smoothing_both_are_the_summed_nll() -> None:
    logits, target = logits_and_target()
    nll, loss = token_losses(logits, target, PAD, 0.0)
    expected = F.cross_entropy(
        logits.reshape(-1, 11), target.reshape(-1), ignore_index=PAD, reduction="sum"
    )
    assert torch.equal(nll, loss)
    assert float(nll) == pytest.approx(float(expected), rel=1e-6)


@pytest.mark.parametrize("eps", [0.1, 0.3])
def test_smoothing_matches_torch_and_leaves_the_nll_alone(eps: float) -> None:
    logits, target = logits_and_target()
    nll, loss = token_losses(logits, target, PAD, eps)
    plain, _ = token_losses(logits, target, PAD, 0.0)
    expected = F.cross_entropy(
        logits.reshape(-1, 11),
        target.reshape(-1),
        ignore_index=PAD,
        reduction="sum",
        label_smoothing=eps,
    )
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    assert float(nll) == pytest.approx(float(plain), rel=1e-6)
    assert float(loss) != pytest.approx(float(nll))


def test_padding_counts_for_nothing() -> None:
    logits, target = logits_and_target()
    wider_logits = torch.cat([logits, torch.randn(3, 4, 11)], dim=1)
    wider_target = torch.cat([target, torch.full((3, 4), PAD)], dim=1)
    for eps in (0.0, 0.2):
        a = token_losses(logits, target, PAD, eps)
        b = token_losses(wider_logits, wider_target, PAD, eps)
        assert [float(x) for x in a] == pytest.approx([float(x) for x in b], rel=1e-6)
