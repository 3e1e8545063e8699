"""Several trained models decoding as one.

:class:`Ensemble` offers the interface the search code calls on a
:class:`~nmt.models.seq2seq.Seq2Seq` (``encode``, ``init_state``,
``decode_step``, ``reorder_state``, ``forward``), so greedy, beam search,
sampling and the evaluation loss run on it unchanged.  At every step each
member gives its log-probabilities log p_m(y | y_<t, x) over the shared
target vocabulary, and the ensemble returns their mean

    s(y) = 1/M sum_m log p_m(y | y_<t, x),

which the search normalises with a log-softmax (a normalised geometric mean
of the members' distributions).  The members need the same source and
target vocabularies (the loader checks), not the same architecture.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from nmt.models.decoder import State, select_state
from nmt.models.encoder import EncoderOutput
from nmt.models.seq2seq import Seq2Seq


class EnsembleEncoding:
    """The members' encodings of one batch, in member order."""

    def __init__(self, parts: Sequence[EncoderOutput]) -> None:
        self.parts = list(parts)

    def select(self, rows: Tensor | slice) -> EnsembleEncoding:
        """The encodings of batch rows ``rows`` only (as EncoderOutput.select)."""
        return EnsembleEncoding([part.select(rows) for part in self.parts])


class Ensemble(nn.Module):
    """M models over one vocabulary pair, decoding with their mean log-probabilities.

    The decoder state is the members' states laid end to end in one tuple
    (every tensor has the batch at dim 1, as each member's own), so that
    :meth:`reorder_state` is the members' own row selection.
    """

    def __init__(self, models: Sequence[Seq2Seq]) -> None:
        super().__init__()
        if not models:
            raise ValueError("an ensemble needs at least one model")
        self.members = nn.ModuleList(models)
        self.src_pad = models[0].src_pad
        self.tgt_pad = models[0].tgt_pad
        self._state_sizes: list[int] = []

    def _models(self) -> list[Seq2Seq]:
        return list(self.members)  # type: ignore[arg-type]

    def encode(self, src: Tensor, src_lengths: Tensor) -> EnsembleEncoding:
        return EnsembleEncoding([m.encode(src, src_lengths) for m in self._models()])

    def init_state(self, enc: EnsembleEncoding) -> State:
        states = [m.init_state(e) for m, e in zip(self._models(), enc.parts, strict=True)]
        self._state_sizes = [len(s) for s in states]
        return tuple(t for s in states for t in s)

    def _split(self, state: State) -> list[State]:
        parts, start = [], 0
        for size in self._state_sizes:
            parts.append(state[start : start + size])
            start += size
        return parts

    def decode_step(
        self, y_prev: Tensor, state: State, enc: EnsembleEncoding
    ) -> tuple[Tensor, State, Tensor | None]:
        """One step: y_prev (B,) -> mean log-probabilities (B, V), the new joint
        state, and the members' mean attention (B, S), or None when the first
        member has none."""
        log_probs, states, attns = [], [], []
        members = zip(self._models(), self._split(state), enc.parts, strict=True)
        for model, part, enc_part in members:
            logits, new_state, attn = model.decode_step(y_prev, part, enc_part)
            log_probs.append(torch.log_softmax(logits.float(), dim=-1))
            states.append(new_state)
            attns.append(attn)
        return _mean(log_probs), tuple(t for s in states for t in s), _mean_attention(attns)

    @staticmethod
    def reorder_state(state: State, index: Tensor) -> State:
        """Batch rows ``index`` (B',) of the joint state."""
        return select_state(state, index)

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
