"""Recurrent decoders: the base every decoder shares, Sutskever's and Cho's.

Every decoder is a :class:`Decoder` and offers the same four calls, so that
:class:`Seq2Seq`, training and search never need to know which architecture
they drive:

- ``init_state(enc, max_steps)``: the state before the first target step, for
  at most ``max_steps`` calls of ``step`` (a Transformer sizes its key/value
  cache by it; the RNNs need no bound);
- ``step(y_prev, state, enc)``: one target step -> (features, state, attention);
- ``forward_sequence(tgt_in, state, enc)``: every step under teacher forcing.
  When ``parallel_teacher_forcing`` is true no step reads an earlier step's
  features, so the RNN runs over the whole target in one call; otherwise it is
  a fused loop that still embeds and projects once;
- ``project(features)``: features -> vocabulary logits.

``features`` is whatever the output layer reads (for Sutskever, the top RNN
state); keeping ``project`` separate lets the caller run the big vocabulary
projection once over all steps instead of once per step.

A state is a dataclass owned by its decoder (:class:`RNNState` and its
subclasses here); ``state.select(rows)`` takes batch rows of every tensor in
it, which is how beam search reorders hypotheses and training drops finished
sentences.  A state may also carry per-sentence constants a decoder computes
once per batch in ``init_state`` (Cho's summary c, the attention keys U_a
h_j), laid out with the batch at dim 1 too, so that reordering rows keeps
them aligned.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Generic, TypeVar

import torch
from torch import Tensor, nn

from nmt.config import CellType, ChoContext, ChoSummary, Readout
from nmt.models.encoder import EncoderOutput, make_rnn
from nmt.models.interface import Selectable

# What nn.RNN/nn.GRU take (h) or nn.LSTM takes ((h, c)), each (L, B, H).
TorchRNNState = Tensor | tuple[Tensor, Tensor]
S = TypeVar("S", bound="RNNState")
StateT = TypeVar("StateT", bound=Selectable)


def _rows(tensor: Tensor, rows: Tensor | slice) -> Tensor:
    """Batch rows (dim 1) of a state tensor, contiguous as the RNNs want: an index
    (B',) (beam search reorders and copies rows) or a slice (training keeps
    the first B' sentences)."""
    if isinstance(rows, slice):
        return tensor[:, rows].contiguous()
    return tensor.index_select(1, rows)


@dataclass
class RNNState:
    """A recurrent decoder's state: h (L, B, H) and an LSTM's memory cells
    (L, B, H) or None.  Subclasses add what their decoder carries, every tensor
    with the batch at dim 1."""

    hidden: Tensor
    cell: Tensor | None

    def select(self: S, rows: Tensor | slice) -> S:
        """The state of batch rows ``rows`` only (B -> B' rows, repeats allowed)."""
        changes = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Tensor):
                changes[field.name] = _rows(value, rows)
        return dataclasses.replace(self, **changes)

    @property
    def rnn(self) -> TorchRNNState:
        """What the torch RNN takes: h, or (h, c) for an LSTM."""
        return self.hidden if self.cell is None else (self.hidden, self.cell)

    def advanced(self: S, rnn_state: TorchRNNState) -> S:
        """A new state with the RNN's new (h[, c]) and the other fields kept."""
        hidden, cell = _h_and_c(rnn_state)
        return dataclasses.replace(self, hidden=hidden, cell=cell)


def _h_and_c(rnn_state: TorchRNNState) -> tuple[Tensor, Tensor | None]:
    return rnn_state if isinstance(rnn_state, tuple) else (rnn_state, None)


def rnn_start(rnn_state: TorchRNNState) -> RNNState:
    """A plain :class:`RNNState` from what a torch RNN takes."""
    hidden, cell = _h_and_c(rnn_state)
    return RNNState(hidden=hidden, cell=cell)


@dataclass
class ChoState(RNNState):
    """Cho's decoder state: the RNN's, and the summary c (1, B, H)."""

    summary: Tensor


def top_hidden(rnn_state: TorchRNNState) -> Tensor:
    """The top layer's hidden state (B, H)."""
    hidden = rnn_state[0] if isinstance(rnn_state, tuple) else rnn_state
    return hidden[-1]


def layered_start(
    proj: nn.Linear, summary: Tensor, num_layers: int, is_lstm: bool
) -> TorchRNNState:
    """tanh(W summary) split into one start state per layer: (B, D) -> (L, B, H),
    where ``proj`` maps D -> L*H (Cho et al. 2014, appendix A.2, and Bahdanau et
    al. 2015, appendix A.2.2, start a one-layer decoder this way; each extra
    layer gets its own slice of W).  An LSTM's memory cells start at zero."""
    batch = summary.size(0)
    hidden = torch.tanh(proj(summary)).view(batch, num_layers, -1).transpose(0, 1).contiguous()
    return (hidden, torch.zeros_like(hidden)) if is_lstm else hidden


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


def make_readout(
    readout: Readout, *, input_dim: int, output_dim: int, maxout: bool
) -> DeepOutput | None:
    """The deep-output layer for ``readout=deep``; None for ``direct``, where the
    vocabulary layer reads [s; c; E y] itself (as the seed tutorials do)."""
    if readout == Readout.direct:
        return None
    return DeepOutput(input_dim=input_dim, output_dim=output_dim, maxout=maxout)


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


def bridged_start(enc: EncoderOutput, bridge_h: Bridge, bridge_c: Bridge | None) -> TorchRNNState:
    """The encoder's final state of each layer, bridged: (L, B, K) -> (L, B, H),
    and an LSTM's memory cells (``bridge_c``; zeros when the encoder has none),
    as Sutskever et al. 2014 start the decoder."""
    final = enc.final_hidden()
    hidden = bridge_h(final).contiguous()
    if bridge_c is None:
        return hidden
    cell = enc.cell if enc.cell is not None else torch.zeros_like(final)
    return hidden, bridge_c(cell).contiguous()


@dataclass(frozen=True)
class DecoderSpec:
    """The sizes and options every decoder is built from, whatever its arch."""

    vocab_size: int  # V, the target vocabulary
    emb_dim: int  # E
    hidden_dim: int  # H: the RNN's size, and the features' size
    num_layers: int  # L
    cell: CellType | None  # None: the decoder has no RNN (the Transformer)
    dropout: float  # on embeddings and features, and between RNN layers
    pad_idx: int  # the target padding id (its embedding stays zero)
    enc_dim: int  # K: the encoder's output size, D*H_enc
    tie_embeddings: bool  # the output layer shares the embedding matrix (needs H == E)


class Decoder(nn.Module, ABC, Generic[StateT]):
    """What every decoder shares: the target embedding E (V, E), the dropout,
    the output layer W_o (H -> V) with its tying, and ``project``.

    A subclass builds its own layers between those and calls ``_add_output()``
    last: modules keep the order they were registered in, ``parameters()``
    follows it (optimizer states in checkpoints and PyTorch's default
    initialisation depend on that order), and it stays embedding first, output
    last.  With ``tie_embeddings`` W_o is E's matrix (Press & Wolf 2017;
    Inan et al. 2017).

    ``parallel_teacher_forcing``: true when no step reads an earlier step's
    features, so that under teacher forcing the RNN can run over all steps at
    once; false (the safe default) makes training loop over steps and drop
    the sentences whose target has ended.
    """

    parallel_teacher_forcing: bool = False

    def __init__(self, spec: DecoderSpec) -> None:
        super().__init__()
        self.spec = spec
        self.is_lstm = spec.cell == CellType.lstm
        self.num_layers = spec.num_layers
        self.embedding = nn.Embedding(spec.vocab_size, spec.emb_dim, padding_idx=spec.pad_idx)
        self.dropout = nn.Dropout(spec.dropout)

    def _make_rnn(self, input_size: int) -> nn.RNNBase:
        """The decoder's RNN over inputs of ``input_size``: (B, T, I) -> (B, T, H)."""
        spec = self.spec
        assert spec.cell is not None, "a decoder with an RNN needs model.cell"
        return make_rnn(
            spec.cell,
            input_size=input_size,
            hidden_size=spec.hidden_dim,
            num_layers=spec.num_layers,
            dropout=spec.dropout,
        )

    def _add_output(self, features_dim: int | None = None) -> None:
        """Register the output layer W_o: (..., F) -> (..., V), tied to E if asked;
        F is H unless the features are wider (``readout=direct``)."""
        self.output = nn.Linear(features_dim or self.spec.hidden_dim, self.spec.vocab_size)
        if self.spec.tie_embeddings:
            self.output.weight = self.embedding.weight

    def _read_out(self, readout: DeepOutput | None, inputs: Tensor) -> Tensor:
        """[s; c; E y_prev] (..., I) -> features: the deep output t (..., H), dropped
        out, or with no deep-output layer the inputs themselves (..., I)."""
        return inputs if readout is None else self.dropout(readout(inputs))

    def embed(self, tokens: Tensor) -> Tensor:
        """Ids (B, [T]) -> dropped-out embeddings E y (B, [T,] E)."""
        return self.dropout(self.embedding(tokens))

    def project(self, features: Tensor) -> Tensor:
        """Features (..., H) -> vocabulary logits W_o t (..., V)."""
        return self.output(features)

    @abstractmethod
    def init_state(self, enc: EncoderOutput, max_steps: int = 0) -> StateT:
        """The state before the first target step, for up to ``max_steps`` steps
        (0: for ``forward_sequence`` only)."""

    @abstractmethod
    def step(
        self, y_prev: Tensor, state: StateT, enc: EncoderOutput
    ) -> tuple[Tensor, StateT, Tensor | None]:
        """y_prev (B,) -> features (B, H), new state, attention weights (B, S) or None."""

    @abstractmethod
    def forward_sequence(self, tgt_in: Tensor, state: StateT, enc: EncoderOutput) -> Tensor:
        """Teacher forcing over tgt_in (B, T) -> features (B, T, H), as ``step`` gives them."""


class RNNDecoder(Decoder[RNNState]):
    """Sutskever et al. 2014 (sec. 2): an RNN language model over the target,
    conditioned on the source only through its initial state.

    State: :class:`RNNState` (h, [cell]).
    Shapes: y_prev (B,), tgt_in (B, T), features (B, [T,] H), logits (B, [T,] V).
    """

    parallel_teacher_forcing = True

    def __init__(self, *, spec: DecoderSpec) -> None:
        super().__init__(spec)
        self.rnn = self._make_rnn(spec.emb_dim)
        self.bridge_h = Bridge(enc_dim=spec.enc_dim, dec_dim=spec.hidden_dim)
        self.bridge_c = (
            Bridge(enc_dim=spec.enc_dim, dec_dim=spec.hidden_dim) if self.is_lstm else None
        )
        self._add_output()

    def init_state(self, enc: EncoderOutput, max_steps: int = 0) -> RNNState:
        return rnn_start(bridged_start(enc, self.bridge_h, self.bridge_c))

    def _run(self, tokens: Tensor, state: RNNState) -> tuple[Tensor, RNNState]:
        """tokens (B, T) -> features (B, T, H) and the state after step T."""
        out, new_state = self.rnn(self.embed(tokens), state.rnn)
        return self.dropout(out), state.advanced(new_state)

    def step(
        self, y_prev: Tensor, state: RNNState, enc: EncoderOutput
    ) -> tuple[Tensor, RNNState, Tensor | None]:
        out, state = self._run(y_prev[:, None], state)
        return out[:, 0], state, None

    def forward_sequence(self, tgt_in: Tensor, state: RNNState, enc: EncoderOutput) -> Tensor:
        return self._run(tgt_in, state)[0]


class ChoDecoder(Decoder[ChoState]):
    """Cho et al. 2014 RNN Encoder-Decoder (sec. 2.2 and appendix A).

    The encoder's final top-layer state becomes one summary vector
    c = tanh(V h_N) (appendix A.1), which

    - starts the decoder, h'_0 = tanh(V' c), a slice of V' per layer (A.2);
    - with ``context`` step or step_output, is an input of every step:
      h'_t = f(h'_{t-1}, y_{t-1}, c);
    - with step_output, also reaches the output layer beside the previous word:
      p(y_t | y_<t, c) = g(h'_t, y_{t-1}, c), a :class:`DeepOutput` over
      [h'_t; E y_{t-1}; c] (the paper's wiring), or with ``readout=direct``
      the vocabulary layer over [h'_t; E y_{t-1}; c] itself.

    With ``summary=final`` (the seed tutorial) c is h_N itself and the decoder
    starts from the encoder's final states, bridged as Sutskever's when the
    sizes differ; c is then the top layer of that start state.

    No step reads an earlier step's output except through y_{t-1}, so teacher
    forcing runs the RNN over the whole target in one call.  An LSTM's memory
    cells start at zero.

    State: :class:`ChoState` (h, [cell], c (1, B, H)).
    Shapes: y_prev (B,), tgt_in (B, T), features (B, [T,] H), logits (B, [T,] V).
    """

    parallel_teacher_forcing = True

    def __init__(
        self,
        *,
        spec: DecoderSpec,
        context: ChoContext,
        maxout: bool,
        readout: Readout = Readout.deep,
        summary: ChoSummary = ChoSummary.projected,
    ) -> None:
        super().__init__(spec)
        hidden, emb = spec.hidden_dim, spec.emb_dim
        self.context = context
        self.projected = summary == ChoSummary.projected
        if self.projected:
            self.summary = nn.Linear(spec.enc_dim, hidden)  # V
            self.init_proj = nn.Linear(hidden, spec.num_layers * hidden)  # V'
        else:
            self.bridge_h = Bridge(enc_dim=spec.enc_dim, dec_dim=hidden)
            self.bridge_c = Bridge(enc_dim=spec.enc_dim, dec_dim=hidden) if self.is_lstm else None
        self.rnn = self._make_rnn(emb + (0 if context == ChoContext.init else hidden))
        out_dim = 2 * hidden + emb
        self.readout = make_readout(readout, input_dim=out_dim, output_dim=hidden, maxout=maxout)
        direct = context == ChoContext.step_output and self.readout is None
        self._add_output(out_dim if direct else hidden)

    def init_state(self, enc: EncoderOutput, max_steps: int = 0) -> ChoState:
        """c = tanh(V h_N) from the top layer's final state (B, D*H_enc) and
        h'_0 = tanh(V' c); or (``summary=final``) h'_0 = the bridged final
        states, c = h'_0's top layer."""
        if not self.projected:
            rnn_state = bridged_start(enc, self.bridge_h, self.bridge_c)
            summary = top_hidden(rnn_state)
        else:
            summary = torch.tanh(self.summary(enc.final_hidden()[-1]))  # (B, H)
            rnn_state = layered_start(self.init_proj, summary, self.num_layers, self.is_lstm)
        start = rnn_start(rnn_state)
        return ChoState(hidden=start.hidden, cell=start.cell, summary=summary[None])

    def _run(self, tokens: Tensor, state: ChoState) -> tuple[Tensor, ChoState]:
        """tokens (B, T) -> features (B, T, H) and the state after step T."""
        summary = state.summary[0]  # (B, H)
        embedded = self.embed(tokens)
        repeated = summary[:, None, :].expand(-1, tokens.size(1), -1)
        inputs = (
            embedded if self.context == ChoContext.init else torch.cat([embedded, repeated], -1)
        )
        out, new_rnn_state = self.rnn(inputs, state.rnn)
        if self.context != ChoContext.step_output:
            return self.dropout(out), state.advanced(new_rnn_state)
        features = self._read_out(self.readout, torch.cat([out, embedded, repeated], dim=-1))
        return features, state.advanced(new_rnn_state)

    def step(
        self, y_prev: Tensor, state: ChoState, enc: EncoderOutput
    ) -> tuple[Tensor, ChoState, Tensor | None]:
        features, state = self._run(y_prev[:, None], state)
        return features[:, 0], state, None

    def forward_sequence(self, tgt_in: Tensor, state: ChoState, enc: EncoderOutput) -> Tensor:
        return self._run(tgt_in, state)[0]
