"""The RNN variants compute what they computed before the decoding interface
was reshaped (issue 21): logits, packed logits, fed-back argmax logits, greedy
and beam hypotheses of 38 variants and an ensemble, against
``tests/data/rnn_reference.pt`` (recorded by rnn_reference.py).

Bit for bit on the machine that recorded them; elsewhere float kernels may
round differently, so floats are compared to 1e-6 and ids exactly."""

from __future__ import annotations

import pytest
import torch
from rnn_reference import REFERENCE, outputs


@pytest.fixture(scope="module")
def reference() -> dict[str, list[torch.Tensor]]:
    return torch.load(REFERENCE, weights_only=True)


def test_every_rnn_variant_computes_what_it_did(reference: dict[str, list[torch.Tensor]]) -> None:
    now = outputs()
    assert sorted(now) == sorted(reference)
    for name, expected in reference.items():
        got = now[name]
        assert len(got) == len(expected), name
        for new, old in zip(got, expected, strict=True):
            if old.is_floating_point():
                torch.testing.assert_close(new, old, atol=1e-6, rtol=1e-6, msg=name)
            else:
                assert torch.equal(new, old), name
