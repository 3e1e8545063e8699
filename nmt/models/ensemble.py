"""Several trained models decoding as one.

:class:`Ensemble` is a :class:`~nmt.models.interface.DecodingModel`
(``encode``, ``init_state``, ``decode_step``, ``reorder_state``, ``forward``),
so greedy, beam search, sampling and the evaluation loss run on it as on one
model.  At every step each
member gives its log-probabilities log p_m(y | y_<t, x) over the shared
target vocabulary, and the ensemble returns their mean

    s(y) = 1/M sum_m log p_m(y | y_<t, x),

which the search normalises with a log-softmax (a normalised geometric mean
of the members' distributions).  The members need the same source and
target vocabularies (the loader checks), not the same architecture.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from nmt.models.encoder import EncoderOutput
from nmt.models.seq2seq import Seq2Seq


class EnsembleEncoding:
    """The members' encodings of one batch, in member order."""

    def __init__(self, parts: Sequence[EncoderOutput]) -> None:
        self.parts = list(parts)

    def select(self, rows: Tensor | slice) -> EnsembleEncoding:
        """The encodings of batch rows ``rows`` only (as EncoderOutput.select)."""
        return EnsembleEncoding([part.select(rows) for part in self.parts])


@dataclass
class EnsembleState:
    """The members' decoder states, in member order (each of its own type)."""

    parts: list[Any]


class Ensemble(nn.Module):
    """M models over one vocabulary pair, decoding with their mean log-probabilities.

    The state is each member's own state; :meth:`reorder_state` asks each
    member to reorder its own.
    """

    def __init__(self, models: Sequence[Seq2Seq]) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        self.members = nn.ModuleList(models)
        self.src_pad = models[0].src_pad
        self.tgt_pad = models[0].tgt_pad

    def _models(self) -> list[Seq2Seq]:
        return list(self.members)  # type: ignore[arg-type]

    def encode(self, src: Tensor, src_lengths: Tensor) -> EnsembleEncoding:
        return EnsembleEncoding([m.encode(src, src_lengths) for m in self._models()])

    def init_state(self, enc: EnsembleEncoding, max_steps: int = 0) -> EnsembleState:
        members = zip(self._models(), enc.parts, strict=True)
        return EnsembleState([m.init_state(e, max_steps) for m, e in members])

    def decode_step(
        self, y_prev: Tensor, state: EnsembleState, enc: EnsembleEncoding
    ) -> tuple[Tensor, EnsembleState, Tensor | None]:
        """One step: y_prev (B,) -> mean log-probabilities (B, V), the members'
        new states, and their mean attention (B, S), or None when the first
        member has none."""
        log_probs, states, attns = [], [], []
        members = zip(self._models(), state.parts, enc.parts, strict=True)
        for model, part, enc_part in members:
            logits, new_state, attn = model.decode_step(y_prev, part, enc_part)
            log_probs.append(torch.log_softmax(logits.float(), dim=-1))
            states.append(new_state)
            attns.append(attn)
        return _mean(log_probs), EnsembleState(states), _mean_attention(attns)

    def reorder_state(self, state: EnsembleState, rows: Tensor) -> EnsembleState:
        """Batch rows ``rows`` (B',) of every member's state, each reordered by its model."""
        members = zip(self._models(), state.parts, strict=True)
        return EnsembleState([m.reorder_state(part, rows) for m, part in members])

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0
    ) -> Tensor:
        """Mean log-probabilities (B, T, V) of targets ``tgt_in`` (B, T)
        under teacher forcing; a cross-entropy over them renormalises."""
        outputs = [
            torch.log_softmax(m(src, src_lengths, tgt_in, teacher_forcing).float(), dim=-1)
            for m in self._models()
        ]
        return _mean(outputs)


def _mean(tensors: list[Tensor]) -> Tensor:
    return torch.stack(tensors).mean(0)


def _mean_attention(attns: list[Tensor | None]) -> Tensor | None:
    """Mean of the members' attention (B, S); None unless the first has one,
    and the members without attention left out."""
    if attns[0] is None:
        return None
    return _mean([a.float() for a in attns if a is not None])
