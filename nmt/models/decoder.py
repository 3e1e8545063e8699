"""Recurrent decoders.

Every decoder offers the same four calls, so that :class:`Seq2Seq`, training
and search never need to know which architecture they drive:

- ``init_state(enc)``: the state before the first target step;
- ``step(y_prev, state, enc)``: one target step -> (features, state, attention);
- ``forward_sequence(tgt_in, state, enc)``: all steps at once under teacher
  forcing, available when ``parallel_teacher_forcing`` is true (one RNN call
  where no step reads an earlier step's output; otherwise a fused loop that
  still embeds and projects once);
- ``project(features)``: features -> vocabulary logits.

``features`` is whatever the output layer reads (for Sutskever, the top RNN
state); keeping ``project`` separate lets the caller run the big vocabulary
projection once over all steps instead of once per step.

A state may also carry per-sentence constants a decoder computes once per
batch in ``init_state`` (Cho's summary c, the attention keys U_a h_j), laid
out with the batch at dim 1 too, so that reordering rows keeps them aligned.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from nmt.config import CellType, ChoContext
from nmt.models.encoder import EncoderOutput, make_rnn

# A decoder state: a tuple of tensors whose batch dimension is dim 1 (RNN layout).
State = tuple[Tensor, ...]
# What nn.RNN/nn.GRU take (h) or nn.LSTM takes ((h, c)), each (L, B, H).
RNNState = Tensor | tuple[Tensor, Tensor]


def reorder_state(state: State, index: Tensor) -> State:
    """Pick batch rows ``index`` of every tensor in a state (beam search, sorting)."""
    return tuple(t.index_select(1, index) for t in state)


def split_state(state: State, is_lstm: bool) -> tuple[RNNState, State]:
    """A decoder state -> the RNN's own state and the decoder's extra tensors."""
    if is_lstm:
        return (state[0], state[1]), state[2:]
    return state[0], state[1:]


def join_state(rnn_state: RNNState, extra: State = ()) -> State:
    """Inverse of :func:`split_state`."""
    head = rnn_state if isinstance(rnn_state, tuple) else (rnn_state,)
    return (*head, *extra)


def top_hidden(rnn_state: RNNState) -> Tensor:
    """The top layer's hidden state (B, H)."""
    hidden = rnn_state[0] if isinstance(rnn_state, tuple) else rnn_state
    return hidden[-1]


def layered_init(proj: nn.Linear, summary: Tensor, num_layers: int) -> Tensor:
    """tanh(W summary) split into one start state per layer: (B, D) -> (L, B, H),
    where ``proj`` maps D -> L*H (Cho et al. 2014 and Bahdanau et al. 2015 start
    a one-layer decoder this way; each extra layer gets its own slice of W)."""
    batch = summary.size(0)
    return torch.tanh(proj(summary)).view(batch, num_layers, -1).transpose(0, 1).contiguous()


class DeepOutput(nn.Module):
    """The hidden layer between the decoder and the softmax that reads the state,
    the context and the previous word: (..., I) -> (..., O).

    t = tanh(W x), or with ``maxout`` t_k = max(u_2k, u_2k+1) for u = W x (2*O
    units; maxout as in Cho et al. 2014, appendix A.2, and Bahdanau et al. 2015,
    appendix A.2.2, where x = [s; c; E y_{i-1}]).
    """

    def __init__(self, *, input_dim: int, output_dim: int, maxout: bool) -> None:
        super().__init__()
        self.maxout = maxout
        self.linear = nn.Linear(input_dim, output_dim * (2 if maxout else 1))

    def forward(self, x: Tensor) -> Tensor:
        u = self.linear(x)
        if not self.maxout:
            return torch.tanh(u)
        return u.unflatten(-1, (-1, 2)).amax(dim=-1)


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
    sequential_teacher_forcing = False

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


class ChoDecoder(nn.Module):
    """Cho et al. 2014 RNN Encoder-Decoder (sec. 2.2 and appendix A).

    The encoder's final top-layer state becomes one summary vector
    c = tanh(V h_N) (appendix A.1), which

    - starts the decoder, h'_0 = tanh(V' c), a slice of V' per layer (A.2);
    - with ``context`` step or step_output, is an input of every step:
      h'_t = f(h'_{t-1}, y_{t-1}, c);
    - with step_output, also reaches the output layer beside the previous word:
      p(y_t | y_<t, c) = g(h'_t, y_{t-1}, c), a :class:`DeepOutput` over
      [h'_t; E y_{t-1}; c] (the paper's wiring).

    No step reads an earlier step's output except through y_{t-1}, so teacher
    forcing runs the RNN over the whole target in one call.  An LSTM's memory
    cells start at zero.

    State: (h (L, B, H), [cell (L, B, H)], c (1, B, H)).
    Shapes: y_prev (B,), tgt_in (B, T), features (B, [T,] H), logits (B, [T,] V).
    """

    parallel_teacher_forcing = True
    sequential_teacher_forcing = False

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
        context: ChoContext,
        maxout: bool,
        tie_embeddings: bool,
    ) -> None:
        super().__init__()
        self.is_lstm = cell == CellType.lstm
        self.num_layers = num_layers
        self.context = context
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_idx)
        self.dropout = nn.Dropout(dropout)
        self.summary = nn.Linear(enc_dim, hidden_dim)  # V
        self.init_proj = nn.Linear(hidden_dim, num_layers * hidden_dim)  # V'
        step_input = emb_dim + (0 if context == ChoContext.init else hidden_dim)
        self.rnn = make_rnn(
            cell,
            input_size=step_input,
            hidden_size=hidden_dim,
            num_layers=num_layers,
            dropout=dropout,
        )
        self.readout = (
            DeepOutput(input_dim=2 * hidden_dim + emb_dim, output_dim=hidden_dim, maxout=maxout)
            if context == ChoContext.step_output
            else None
        )
        self.output = nn.Linear(hidden_dim, vocab_size)
        if tie_embeddings:
            self.output.weight = self.embedding.weight

    def init_state(self, enc: EncoderOutput) -> State:
        """c = tanh(V h_N) from enc.hidden[-1] (B, D*H_enc); h'_0 = tanh(V' c)."""
        summary = torch.tanh(self.summary(enc.hidden[-1]))  # (B, H)
        hidden = layered_init(self.init_proj, summary, self.num_layers)
        rnn_state: RNNState = (hidden, torch.zeros_like(hidden)) if self.is_lstm else hidden
        return join_state(rnn_state, (summary[None],))

    def _run(self, tokens: Tensor, state: State) -> tuple[Tensor, State]:
        """tokens (B, T) -> features (B, T, H) and the state after step T."""
        rnn_state, extra = split_state(state, self.is_lstm)
        summary = extra[0][0]  # (B, H)
        embedded = self.dropout(self.embedding(tokens))
        repeated = summary[:, None, :].expand(-1, tokens.size(1), -1)
        inputs = (
            embedded if self.context == ChoContext.init else torch.cat([embedded, repeated], -1)
        )
        out, new_rnn_state = self.rnn(inputs, rnn_state)
        if self.readout is not None:
            out = self.readout(torch.cat([out, embedded, repeated], dim=-1))
        return self.dropout(out), join_state(new_rnn_state, extra)

    def step(
        self, y_prev: Tensor, state: State, enc: EncoderOutput
    ) -> tuple[Tensor, State, Tensor | None]:
        features, state = self._run(y_prev[:, None], state)
        return features[:, 0], state, None

    def forward_sequence(self, tgt_in: Tensor, state: State, enc: EncoderOutput) -> Tensor:
        return self._run(tgt_in, state)[0]

    def project(self, features: Tensor) -> Tensor:
        return self.output(features)
