"""Attention decoders: Bahdanau et al. 2015 and Luong et al. 2015.

Both are :class:`~nmt.models.decoder.Decoder` subclasses.  Their states
carry, besides the RNN state, what must follow a sentence when rows are
reordered: the additive attention keys U_a h_j (computed once per batch in
``init_state``, stored as (S, B, A)) and Luong's fed-back h~_{t-1} (1, B, H).
``step`` returns the attention weights (B, S) of the step; padded source
positions get exactly zero weight.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from nmt.config import AttentionScore, DecoderInit, Readout
from nmt.models.attention import AdditiveAttention, build_attention
from nmt.models.decoder import (
    Bridge,
    Decoder,
    DecoderSpec,
    RNNState,
    bridged_start,
    layered_start,
    make_readout,
    rnn_start,
)
from nmt.models.encoder import EncoderOutput


@dataclass
class BahdanauState(RNNState):
    """Bahdanau's decoder state: the RNN's, and the attention keys U_a h_j (S, B, A)."""

    keys: Tensor


@dataclass
class LuongState(RNNState):
    """Luong's decoder state: the RNN's, h~_{t-1} (1, B, H) with input feeding,
    and the attention keys (S, B, A) with the concat score."""

    feed: Tensor | None
    keys: Tensor | None


class BahdanauDecoder(Decoder[BahdanauState]):
    """Bahdanau et al. 2015 (sec. 3.1; appendix A.2.2), "RNNsearch".

    At target step i, from the previous state s_{i-1} (top layer):

    - e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j), alpha_i = softmax_j(e_i), and
      c_i = sum_j alpha_ij h_j over the encoder states h_j (B, S, K);
    - s_i = f(s_{i-1}, [E y_{i-1}; c_i]) (the context enters the RNN input);
    - t_i = deep output over [s_i; c_i; E y_{i-1}] (tanh or maxout), then the
      vocabulary projection.  The paper's appendix reads s_{i-1} there; we use
      the new state s_i, as most reimplementations do.  With ``readout=direct``
      (the seed tutorial) the vocabulary layer reads [s_i; c_i; E y_{i-1}] itself.

    Start state (``decoder_init``): s_0 = tanh(W_s h<-_1), the backward RNN's
    state at the first source word, as in the paper; or tanh(W_s .) of the
    top layer's final states (``final``) or of the mean encoder state over the
    real positions (``mean``); ``final`` with one layer is the seed tutorial's
    tanh(W [h->_N; h<-_1]).  Each decoder layer gets its own slice of W_s;
    an LSTM's memory cells start at zero.

    Teacher forcing still needs a loop (the attention reads s_{i-1}: no
    ``parallel_teacher_forcing``), but ``forward_sequence`` embeds all target
    tokens and applies the deep output once over all steps.

    State: :class:`BahdanauState` (s, [cell], keys (S, B, A)).
    Shapes: y_prev (B,), tgt_in (B, T), features (B, [T,] H), weights (B, S).
    """

    parallel_teacher_forcing = False

    def __init__(
        self,
        *,
        spec: DecoderSpec,
        decoder_init: DecoderInit,
        maxout: bool,
        readout: Readout = Readout.deep,
    ) -> None:
        super().__init__(spec)
        hidden, emb, enc = spec.hidden_dim, spec.emb_dim, spec.enc_dim
        self.decoder_init = decoder_init
        self.attention = AdditiveAttention(query_dim=hidden, key_dim=enc, attn_dim=hidden)
        init_dim = enc // 2 if decoder_init == DecoderInit.backward else enc
        self.init_proj = nn.Linear(init_dim, spec.num_layers * hidden)  # W_s
        self.rnn = self._make_rnn(emb + enc)
        out_dim = hidden + enc + emb
        self.readout = make_readout(readout, input_dim=out_dim, output_dim=hidden, maxout=maxout)
        self._add_output(hidden if self.readout is not None else out_dim)

    def _summary(self, enc: EncoderOutput) -> Tensor:
        """The vector the start state is computed from: (B, K/2) or (B, K)."""
        top = enc.final_hidden()[-1]  # (B, K): [forward final; backward final] when bidirectional
        if self.decoder_init == DecoderInit.backward:
            return top[:, top.size(-1) // 2 :]  # h<-_1: the backward RNN ends at word 1
        if self.decoder_init == DecoderInit.final:
            return top
        mask = enc.mask[:, :, None].to(enc.outputs.dtype)
        return (enc.outputs * mask).sum(1) / mask.sum(1)

    def init_state(self, enc: EncoderOutput, max_steps: int = 0) -> BahdanauState:
        rnn_state = layered_start(self.init_proj, self._summary(enc), self.num_layers, self.is_lstm)
        keys = self.attention.prepare(enc.outputs).transpose(0, 1)  # (S, B, A), once per batch
        start = rnn_start(rnn_state)
        return BahdanauState(hidden=start.hidden, cell=start.cell, keys=keys)

    def _recur(
        self, embedded: Tensor, state: BahdanauState, enc: EncoderOutput
    ) -> tuple[Tensor, Tensor, BahdanauState, Tensor]:
        """embedded (B, E) -> s_i (B, H), c_i (B, K), new state, alpha_i (B, S)."""
        query = state.hidden[-1][:, None, :]  # s_{i-1}: (B, 1, H)
        context, weights = self.attention(query, enc.outputs, enc.mask, state.keys.transpose(0, 1))
        inputs = torch.cat([embedded[:, None, :], context], dim=-1)
        out, new_rnn_state = self.rnn(inputs, state.rnn)
        state = state.advanced(new_rnn_state)
        return out.squeeze(1), context.squeeze(1), state, weights.squeeze(1)

    def _features(self, states: Tensor, contexts: Tensor, embedded: Tensor) -> Tensor:
        """Readout of [s_i; c_i; E y_{i-1}] (B, [T,] H + K + E) -> (B, [T,] H), or
        the concatenation itself with ``readout=direct``."""
        return self._read_out(self.readout, torch.cat([states, contexts, embedded], dim=-1))

    def step(
        self, y_prev: Tensor, state: BahdanauState, enc: EncoderOutput
    ) -> tuple[Tensor, BahdanauState, Tensor | None]:
        embedded = self.embed(y_prev)
        hidden, context, state, weights = self._recur(embedded, state, enc)
        return self._features(hidden, context, embedded), state, weights

    def forward_sequence(self, tgt_in: Tensor, state: BahdanauState, enc: EncoderOutput) -> Tensor:
        embedded = self.embed(tgt_in)  # (B, T, E)
        hiddens, contexts = [], []
        for step_embedded in embedded.unbind(1):  # unbind: one backward op, not T
            hidden, context, state, _ = self._recur(step_embedded, state, enc)
            hiddens.append(hidden)
            contexts.append(context)
        return self._features(torch.stack(hiddens, 1), torch.stack(contexts, 1), embedded)


class LuongDecoder(Decoder[LuongState]):
    """Luong et al. 2015 global attention (sec. 3 and 3.1), stacked RNN.

    At target step t the RNN first advances, h_t = f(h_{t-1}, x_t), then the
    top state h_t attends: a_t = softmax(score(h_t, h_s)) (eq. 7, with
    ``score`` dot | general | concat, eq. 8), c_t = sum_s a_t(s) h_s, and the
    attentional state h~_t = tanh(W_c [c_t; h_t]) (eq. 5) is the feature the
    vocabulary projection reads (eq. 6).

    With ``input_feeding`` (sec. 3.3), x_t = [E y_{t-1}; h~_{t-1}] (h~_0 = 0),
    so teacher forcing loops over steps.  Without it, x_t = E y_{t-1}
    (``parallel_teacher_forcing``): ``forward_sequence`` runs the RNN over the
    whole target in one call and the attention for all steps with batched
    matrix products.

    The start state maps the encoder's final states per layer (tanh(W .) when
    the sizes differ, as :class:`Bridge`), as in Sutskever et al. 2014.

    State: :class:`LuongState` (h, [cell], [h~ (1, B, H)], [keys (S, B, A)]);
    keys only for ``concat``.
    Shapes: y_prev (B,), tgt_in (B, T), features (B, [T,] H), weights (B, S).
    """

    def __init__(self, *, spec: DecoderSpec, score: AttentionScore, input_feeding: bool) -> None:
        super().__init__(spec)
        hidden, enc = spec.hidden_dim, spec.enc_dim
        self.input_feeding = input_feeding
        self.parallel_teacher_forcing = not input_feeding
        self.rnn = self._make_rnn(spec.emb_dim + (hidden if input_feeding else 0))
        self.bridge_h = Bridge(enc_dim=enc, dec_dim=hidden)
        self.bridge_c = Bridge(enc_dim=enc, dec_dim=hidden) if self.is_lstm else None
        self.attention = build_attention(score, query_dim=hidden, key_dim=enc)
        self.combine = nn.Linear(enc + hidden, hidden, bias=False)  # W_c
        self._add_output()  # W_s of eq. 6

    def init_state(self, enc: EncoderOutput, max_steps: int = 0) -> LuongState:
        start = rnn_start(bridged_start(enc, self.bridge_h, self.bridge_c))
        hidden = start.hidden
        feed = hidden.new_zeros(1, hidden.size(1), hidden.size(2)) if self.input_feeding else None
        keys = self.attention.prepare(enc.outputs) if self.attention.has_keys else None
        if keys is not None:
            keys = keys.transpose(0, 1)  # (S, B, A), once per batch
        return LuongState(hidden=hidden, cell=start.cell, feed=feed, keys=keys)

    @staticmethod
    def _keys(state: LuongState) -> Tensor | None:
        return None if state.keys is None else state.keys.transpose(0, 1)

    def _attend(
        self, hidden: Tensor, keys: Tensor | None, enc: EncoderOutput
    ) -> tuple[Tensor, Tensor]:
        """Top states h_t (B, T, H) -> h~_t (B, T, H) (after dropout), weights (B, T, S)."""
        context, weights = self.attention(hidden, enc.outputs, enc.mask, keys)
        attentional = torch.tanh(self.combine(torch.cat([context, hidden], dim=-1)))
        return self.dropout(attentional), weights

    def _step(
        self, embedded: Tensor, state: LuongState, enc: EncoderOutput
    ) -> tuple[Tensor, LuongState, Tensor]:
        """embedded (B, E) -> h~_t (B, H), new state, a_t (B, S)."""
        inputs = embedded[:, None, :]
        if state.feed is not None:
            inputs = torch.cat([inputs, state.feed.transpose(0, 1)], dim=-1)
        out, new_rnn_state = self.rnn(inputs, state.rnn)
        features, weights = self._attend(out, self._keys(state), enc)
        state = state.advanced(new_rnn_state)  # a new object: setting feed is safe
        if state.feed is not None:
            state.feed = features.transpose(0, 1)
        return features.squeeze(1), state, weights.squeeze(1)

    def step(
        self, y_prev: Tensor, state: LuongState, enc: EncoderOutput
    ) -> tuple[Tensor, LuongState, Tensor | None]:
        return self._step(self.embed(y_prev), state, enc)

    def forward_sequence(self, tgt_in: Tensor, state: LuongState, enc: EncoderOutput) -> Tensor:
        embedded = self.embed(tgt_in)  # (B, T, E)
        if not self.input_feeding:
            out, _ = self.rnn(embedded, state.rnn)
            return self._attend(out, self._keys(state), enc)[0]
        features = []
        for step_embedded in embedded.unbind(1):  # unbind: one backward op, not T
            step_features, state, _ = self._step(step_embedded, state, enc)
            features.append(step_features)
        return torch.stack(features, dim=1)
