"""Recurrent decoders.

Every decoder offers the same four calls, so that :class:`Seq2Seq`, training
and search never need to know which architecture they drive:

- ``init_state(enc)``: the state before the first target step;
- ``step(y_prev, state, enc)``: one target step -> (features, state, attention);
- ``forward_sequence(tgt_in, state, enc)``: all steps at once under teacher
  forcing, available when ``parallel_teacher_forcing`` is true;
- ``project(features)``: features -> vocabulary logits.

``features`` is whatever the output layer reads (for Sutskever, the top RNN
state); keeping ``project`` separate lets the caller run the big vocabulary
projection once over all steps instead of once per step.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.config import CellType
from nmt.models.encoder import EncoderOutput, make_rnn

# A decoder state: a tuple of tensors whose batch dimension is dim 1 (RNN layout).
State = tuple[Tensor, ...]


def reorder_state(state: State, index: Tensor) -> State:
    """Pick batch rows ``index`` of every tensor in a state (beam search, sorting)."""
    return tuple(t.index_select(1, index) for t in state)


class Bridge(nn.Module):
    """Maps the encoder's final states to the decoder's initial states.

    Identity when the sizes agree; otherwise tanh(W h) per layer, as in Cho et
    al. 2014 (eq. 8 of the appendix) and Bahdanau et al. 2015 (appendix A.2.2).
    """

    def __init__(self, *, enc_dim: int, dec_dim: int) -> None:
        super().__init__()
        self.proj = None if enc_dim == dec_dim else nn.Linear(enc_dim, dec_dim)

    def forward(self, state: Tensor) -> Tensor:
        return state if self.proj is None else torch.tanh(self.proj(state))


class RNNDecoder(nn.Module):
    """Sutskever et al. 2014 (sec. 2): an RNN language model over the target,
    conditioned on the source only through its initial state.

    Shapes: y_prev (B,), tgt_in (B, T), features (B, [T,] H), logits (B, [T,] V).
    """

    parallel_teacher_forcing = True

    def __init__(
        self,
        *,
        vocab_size: int,
        emb_dim: int,
        hidden_dim: int,
        num_layers: int,
        cell: CellType,
        dropout: float,
        pad_idx: int,
        enc_dim: int,
        tie_embeddings: bool,
    ) -> None:
        super().__init__()
        self.is_lstm = cell == CellType.lstm
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_idx)
        self.dropout = nn.Dropout(dropout)
        self.rnn = make_rnn(
            cell, input_size=emb_dim, hidden_size=hidden_dim, num_layers=num_layers, dropout=dropout
        )
        self.bridge_h = Bridge(enc_dim=enc_dim, dec_dim=hidden_dim)
        self.bridge_c = Bridge(enc_dim=enc_dim, dec_dim=hidden_dim) if self.is_lstm else None
        self.output = nn.Linear(hidden_dim, vocab_size)
        if tie_embeddings:
            self.output.weight = self.embedding.weight

    def init_state(self, enc: EncoderOutput) -> State:
        hidden = self.bridge_h(enc.hidden).contiguous()
        if not self.is_lstm:
            return (hidden,)
        assert self.bridge_c is not None
        cell = enc.cell if enc.cell is not None else torch.zeros_like(enc.hidden)
        return (hidden, self.bridge_c(cell).contiguous())

    def _run(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        embedded = self.dropout(self.embedding(tokens))
        rnn_state = state if self.is_lstm else state[0]
        out, new_state = self.rnn(embedded, rnn_state)
        new = new_state if isinstance(new_state, tuple) else (new_state,)
        return self.dropout(out), new

    def step(
        self, y_prev: Tensor, state: State, enc: EncoderOutput
    ) -> tuple[Tensor, State, Tensor | None]:
        out, state = self._run(y_prev[:, None], state)
        return out[:, 0], state, None

    def forward_sequence(self, tgt_in: Tensor, state: State, enc: EncoderOutput) -> Tensor:
        out, _ = self._run(tgt_in, state)
        return out

    def project(self, features: Tensor) -> Tensor:
        return self.output(features)
