"""What every RNN variant computes at a fixed seed, recorded to compare refactors.

``outputs()`` builds each variant of ``test_models.VARIANTS`` (LSTM and GRU)
at seed 0 and returns, by name, its teacher-forced logits, its packed
training logits, its logits when it feeds back its own argmax, and its greedy
and beam-search hypotheses (ids, scores, attention), plus those of a
two-model ensemble.  ``tests/data/rnn_reference.pt`` holds the values the
code gave before the decoding interface was reshaped (issue 21);
test_rnn_reference.py compares against it.  ``--exact`` checks bit-identity
(torch.equal) on this machine; ``--write`` records it again (only when a
change of outputs is meant):

    .venv/bin/python tests/unit/rnn_reference.py --exact
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_models import VARIANTS, padded_batch, tiny_model, variant_id  # noqa: E402

from nmt.config import CellType, DecodingConfig, DecodingStrategy  # noqa: E402
from nmt.decoding.hypothesis import Hypothesis  # noqa: E402
from nmt.decoding.search import search  # noqa: E402
from nmt.models.ensemble import Ensemble  # noqa: E402

REFERENCE = Path(__file__).resolve().parents[1] / "data" / "rnn_reference.pt"
BOS, EOS = 1, 2
DECODINGS = {
    "greedy": DecodingConfig(max_len=8, max_len_ratio=None),
    "beam": DecodingConfig(
        strategy=DecodingStrategy.beam, beam_size=3, n_best=2, length_penalty=1.0, max_len=8
    ),
}


def _hypotheses(found: list[list[Hypothesis]]) -> list[Tensor]:
    flat = [h for hyps in found for h in hyps]
    values = [torch.tensor([len(h.ids), *h.ids]) for h in flat]
    values.append(torch.tensor([h.score for h in flat], dtype=torch.float64))
    values += [h.attention for h in flat if h.attention is not None]
    return values


def _searches(model: Any) -> list[Tensor]:
    src, src_lengths, _, _ = padded_batch()
    values = []
    for decoding in DECODINGS.values():
        found = search(
            model,
            src,
            src_lengths,
            bos_idx=BOS,
            eos_idx=EOS,
            decoding=decoding,
            keep_attention=True,
        )
        values += _hypotheses(found)
    return values


@torch.no_grad()
def _one(arch: str, cell: CellType, extra: dict[str, Any]) -> list[Tensor]:
    model = tiny_model(arch, cell, **extra).eval()
    src, src_lengths, tgt_in, _ = padded_batch()
    packed, index = model.forward_packed(src, src_lengths, tgt_in)
    torch.manual_seed(1)
    own = model(src, src_lengths, tgt_in, teacher_forcing=0.0)
    return [model(src, src_lengths, tgt_in), packed, index, own, *_searches(model)]


@torch.no_grad()
def outputs() -> dict[str, list[Tensor]]:
    """Name -> the tensors the variant computes (see the module docstring)."""
    found = {}
    for cell in (CellType.lstm, CellType.gru):
        for arch, extra in VARIANTS:
            found[f"{cell.value}-{variant_id((arch, extra))}"] = _one(arch, cell, extra)
    members = [tiny_model(arch, CellType.lstm, **extra).eval() for arch, extra in VARIANTS[8:14:5]]
    found["ensemble"] = _searches(Ensemble(members).eval())
    return found


def _exact_differences() -> list[str]:
    """Names whose tensors are not bit-identical to the recorded ones."""
    reference = torch.load(REFERENCE, weights_only=True)
    now = outputs()
    return [
        name
        for name in sorted(set(now) | set(reference))
        if len(now.get(name, [])) != len(reference.get(name, []))
        or not all(torch.equal(a, b) for a, b in zip(now[name], reference[name], strict=True))
    ]


if __name__ == "__main__":
    if sys.argv[1:] == ["--write"]:
        torch.save(outputs(), REFERENCE)
        print(f"wrote {REFERENCE}")
    elif sys.argv[1:] == ["--exact"]:
        differ = _exact_differences()
        print(f"not bit-identical: {differ}" if differ else "all bit-identical")
        sys.exit(1 if differ else 0)
    else:
        sys.exit("usage: rnn_reference.py --write | --exact")
