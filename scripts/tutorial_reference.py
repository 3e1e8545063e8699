"""The yardstick of ``scripts/bench_train.py``: a training loop written the way
the PyTorch seq2seq tutorials write theirs, for nmt's four architectures.

The models have exactly nmt's parameters (same layers, same sizes; a test
compares the counts).  With the seed recipes' options (``model.readout=direct``,
Cho's ``model.summary=final``, Bahdanau's ``model.decoder_init=final``) they are
the seed tutorials' models themselves: the vocabulary layer reads
[s; c; E y] with no deep-output layer in between, and the decoder starts from
the encoder's final state (through tanh(W [forward last; backward first]) for
Bahdanau).  They compute in the tutorials' style:

- time-major tensors, ``(S, B)`` sources and ``(T, B)`` targets, and an
  unpacked encoder RNN;
- ``Seq2Seq.forward`` loops over target steps in Python; each step runs the
  decoder for one token, projects to the whole vocabulary and writes the
  logits into a preallocated ``(T, B, V)`` tensor whose row 0 stays zero;
- one coin per batch and step, ``random.random() < ratio``, decides whether
  the next input is the reference token or the argmax of the step's logits;
- attention is recomputed from scratch at every step: additive attention
  repeats the decoder state S times, concatenates it to every encoder state
  and runs the energy MLP over ``[s; h_j]``; Luong's ``general`` score
  projects every encoder state again;
- the loss is ``CrossEntropyLoss(ignore_index=pad)`` over ``outputs[1:]``
  reshaped to ``(T-1)*B`` rows, then backward, clip, step and ``loss.item()``.

Nothing here is used by nmt itself.
"""

from __future__ import annotations

import random
from typing import Any

import torch
from torch import Tensor, nn

from nmt.config import (
    AttentionScore,
    BahdanauConfig,
    ChoConfig,
    ChoContext,
    ChoSummary,
    DecoderInit,
    LuongConfig,
    Readout,
    RNNConfig,
    SutskeverConfig,
)
from nmt.models.encoder import RNN_CLASSES
from nmt.models.registry import VocabSizes
from nmt.models.seq2seq import init_parameters

Hidden = Any  # a (L, B, H) tensor, or an LSTM's (h, c) pair


def time_major_rnn(cfg: RNNConfig, input_size: int, bidirectional: bool = False) -> nn.RNNBase:
    return RNN_CLASSES[cfg.cell](
        input_size,
        cfg.hidden_dim,
        num_layers=cfg.num_layers,
        dropout=cfg.dropout if cfg.num_layers > 1 else 0.0,
        bidirectional=bidirectional,
    )


class TutorialEncoder(nn.Module):
    """Embedding, dropout, RNN over the padded (S, B) source in one call."""

    def __init__(self, cfg: RNNConfig, vocab: int, pad: int) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, cfg.emb_dim, padding_idx=pad)
        self.rnn = time_major_rnn(cfg, cfg.emb_dim, cfg.bidirectional)
        self.dropout = nn.Dropout(cfg.dropout)
        self.directions = 2 if cfg.bidirectional else 1
        self.out_dim = cfg.hidden_dim * self.directions

    def forward(self, src: Tensor) -> tuple[Tensor, Hidden]:
        """src (S, B) -> outputs (S, B, D*H), final state (L*D, B, H) [pair for LSTM]."""
        return self.rnn(self.dropout(self.embedding(src)))

    def layered(self, state: Tensor) -> Tensor:
        """(L*D, B, H) -> (L, B, D*H), directions side by side."""
        if self.directions == 1:
            return state
        return torch.cat([state[0::2], state[1::2]], dim=-1)


class DeepOutput(nn.Module):
    """tanh(W x), or maxout over pairs of units (the deep output layer)."""

    def __init__(self, in_dim: int, out_dim: int, maxout: bool) -> None:
        super().__init__()
        self.maxout = maxout
        self.linear = nn.Linear(in_dim, out_dim * (2 if maxout else 1))

    def forward(self, x: Tensor) -> Tensor:
        u = self.linear(x)
        if self.maxout:
            return u.view(*u.shape[:-1], -1, 2).max(dim=-1).values
        return torch.tanh(u)


class ConcatAttention(nn.Module):
    """The tutorials' additive attention: v^T tanh(W [s; h_j]) for every j, with
    the decoder state repeated S times and concatenated to the encoder states."""

    def __init__(self, query_dim: int, key_dim: int) -> None:
        super().__init__()
        self.attn = nn.Linear(query_dim + key_dim, query_dim)
        self.v = nn.Linear(query_dim, 1, bias=False)

    def forward(self, query: Tensor, enc_outputs: Tensor, mask: Tensor) -> Tensor:
        """query (B, Q), enc_outputs (S, B, K), mask (B, S) -> weights (B, S)."""
        src_len = enc_outputs.shape[0]
        repeated = query.unsqueeze(1).repeat(1, src_len, 1)
        keys = enc_outputs.permute(1, 0, 2)
        energy = torch.tanh(self.attn(torch.cat((repeated, keys), dim=2)))
        scores = self.v(energy).squeeze(2).masked_fill(mask == 0, -1e10)
        return torch.softmax(scores, dim=1)


class GeneralAttention(nn.Module):
    """Luong's ``general`` (or ``dot``) score, projecting every encoder state each step."""

    def __init__(self, query_dim: int, key_dim: int, project: bool) -> None:
        super().__init__()
        self.attn = nn.Linear(key_dim, query_dim, bias=False) if project else None

    def forward(self, query: Tensor, enc_outputs: Tensor, mask: Tensor) -> Tensor:
        keys = enc_outputs if self.attn is None else self.attn(enc_outputs)
        scores = torch.sum(query.unsqueeze(0) * keys, dim=2).t()
        return torch.softmax(scores.masked_fill(mask == 0, -1e10), dim=1)


def readout_layer(cfg: ChoConfig | BahdanauConfig, in_dim: int) -> DeepOutput | None:
    """The deep-output layer, or None when the vocabulary layer reads in_dim itself."""
    if cfg.readout == Readout.direct:
        return None
    return DeepOutput(in_dim, cfg.hidden_dim, cfg.maxout)


def read_out(layer: DeepOutput | None, dropout: nn.Module, x: Tensor) -> Tensor:
    return x if layer is None else dropout(layer(x))


def bridge(enc_dim: int, dec_dim: int) -> nn.Module | None:
    return None if enc_dim == dec_dim else nn.Linear(enc_dim, dec_dim)


def apply_bridge(layer: nn.Module | None, state: Tensor) -> Tensor:
    return state if layer is None else torch.tanh(layer(state))


def bridged_init(dec: Any, enc: TutorialEncoder, final: Hidden) -> Any:
    """The encoder's final states per layer through ``dec.bridge_h`` (and
    ``dec.bridge_c`` for an LSTM's cells): the decoder's start state."""
    if not dec.is_lstm:
        return apply_bridge(dec.bridge_h, enc.layered(final)).contiguous()
    return (
        apply_bridge(dec.bridge_h, enc.layered(final[0])).contiguous(),
        apply_bridge(dec.bridge_c, enc.layered(final[1])).contiguous(),
    )


class TutorialDecoder(nn.Module):
    """Shared by the four decoders: embedding, dropout, RNN, vocabulary layer."""

    def __init__(
        self, cfg: RNNConfig, vocab: int, pad: int, rnn_input: int, out_dim: int = 0
    ) -> None:
        super().__init__()
        self.is_lstm = cfg.cell.value == "lstm"
        self.layers = cfg.num_layers
        self.embedding = nn.Embedding(vocab, cfg.emb_dim, padding_idx=pad)
        self.rnn = time_major_rnn(cfg, rnn_input)
        self.dropout = nn.Dropout(cfg.dropout)
        self.fc_out = nn.Linear(out_dim or cfg.hidden_dim, vocab)
        self.vocab = vocab
        self.pad = pad
        if cfg.tie_embeddings:
            self.fc_out.weight = self.embedding.weight

    def start(self, hidden: Tensor) -> Hidden:
        return (hidden, torch.zeros_like(hidden)) if self.is_lstm else hidden

    def top(self, state: Hidden) -> Tensor:
        return (state[0] if self.is_lstm else state)[-1]

    def layered_init(self, proj: nn.Linear, summary: Tensor) -> Tensor:
        batch = summary.shape[0]
        return torch.tanh(proj(summary)).view(batch, self.layers, -1).permute(1, 0, 2).contiguous()


class SutskeverDecoder(TutorialDecoder):
    def __init__(self, cfg: SutskeverConfig, vocab: int, pad: int, enc: TutorialEncoder) -> None:
        super().__init__(cfg, vocab, pad, cfg.emb_dim)
        self.bridge_h = bridge(enc.out_dim, cfg.hidden_dim)
        self.bridge_c = bridge(enc.out_dim, cfg.hidden_dim) if self.is_lstm else None

    def init_state(self, enc: TutorialEncoder, outputs: Tensor, final: Hidden, src: Tensor) -> Any:
        return bridged_init(self, enc, final)

    def forward(self, token: Tensor, state: Any) -> tuple[Tensor, Any]:
        embedded = self.dropout(self.embedding(token.unsqueeze(0)))
        output, state = self.rnn(embedded, state)
        return self.fc_out(self.dropout(output.squeeze(0))), state


class ChoDecoder(TutorialDecoder):
    def __init__(self, cfg: ChoConfig, vocab: int, pad: int, enc: TutorialEncoder) -> None:
        extra = 0 if cfg.context == ChoContext.init else cfg.hidden_dim
        in_dim = 2 * cfg.hidden_dim + cfg.emb_dim
        readout = readout_layer(cfg, in_dim) if cfg.context == ChoContext.step_output else None
        direct = cfg.context == ChoContext.step_output and readout is None
        super().__init__(cfg, vocab, pad, cfg.emb_dim + extra, in_dim if direct else 0)
        self.context = cfg.context
        self.projected = cfg.summary == ChoSummary.projected
        if self.projected:
            self.summary = nn.Linear(enc.out_dim, cfg.hidden_dim)
            self.init_proj = nn.Linear(cfg.hidden_dim, cfg.num_layers * cfg.hidden_dim)
        else:  # the tutorial: context = hidden = the encoder's final state
            self.bridge_h = bridge(enc.out_dim, cfg.hidden_dim)
            self.bridge_c = bridge(enc.out_dim, cfg.hidden_dim) if self.is_lstm else None
        self.readout = readout

    def init_state(self, enc: TutorialEncoder, outputs: Tensor, final: Hidden, src: Tensor) -> Any:
        if not self.projected:
            rnn_state = bridged_init(self, enc, final)
            return rnn_state, self.top(rnn_state)
        hidden = enc.layered(final[0] if isinstance(final, tuple) else final)
        c = torch.tanh(self.summary(hidden[-1]))
        return self.start(self.layered_init(self.init_proj, c)), c

    def forward(self, token: Tensor, state: Any) -> tuple[Tensor, Any]:
        rnn_state, c = state
        embedded = self.dropout(self.embedding(token.unsqueeze(0)))
        rnn_in = embedded if self.context == ChoContext.init else torch.cat((embedded, c[None]), 2)
        output, rnn_state = self.rnn(rnn_in, rnn_state)
        output = output.squeeze(0)
        if self.context != ChoContext.step_output:
            return self.fc_out(self.dropout(output)), (rnn_state, c)
        features = torch.cat((output, embedded.squeeze(0), c), dim=1)
        return self.fc_out(read_out(self.readout, self.dropout, features)), (rnn_state, c)


class BahdanauDecoder(TutorialDecoder):
    def __init__(self, cfg: BahdanauConfig, vocab: int, pad: int, enc: TutorialEncoder) -> None:
        in_dim = cfg.hidden_dim + enc.out_dim + cfg.emb_dim
        readout = readout_layer(cfg, in_dim)
        super().__init__(cfg, vocab, pad, cfg.emb_dim + enc.out_dim, 0 if readout else in_dim)
        self.decoder_init = cfg.decoder_init
        self.attention = ConcatAttention(cfg.hidden_dim, enc.out_dim)
        init_dim = enc.out_dim // 2 if cfg.decoder_init == DecoderInit.backward else enc.out_dim
        self.init_proj = nn.Linear(init_dim, cfg.num_layers * cfg.hidden_dim)
        self.readout = readout

    def init_state(self, enc: TutorialEncoder, outputs: Tensor, final: Hidden, src: Tensor) -> Any:
        mask = src.ne(self.pad).t()  # (B, S)
        top = enc.layered(final[0] if isinstance(final, tuple) else final)[-1]
        if self.decoder_init == DecoderInit.backward:
            summary = top[:, top.shape[1] // 2 :]
        elif self.decoder_init == DecoderInit.final:
            summary = top
        else:
            weights = mask.t().unsqueeze(2).float()
            summary = (outputs * weights).sum(0) / weights.sum(0)
        return self.start(self.layered_init(self.init_proj, summary)), outputs, mask

    def forward(self, token: Tensor, state: Any) -> tuple[Tensor, Any]:
        rnn_state, outputs, mask = state
        embedded = self.dropout(self.embedding(token.unsqueeze(0)))  # (1, B, E)
        a = self.attention(self.top(rnn_state), outputs, mask).unsqueeze(1)  # (B, 1, S)
        weighted = torch.bmm(a, outputs.permute(1, 0, 2)).permute(1, 0, 2)  # (1, B, K)
        output, rnn_state = self.rnn(torch.cat((embedded, weighted), dim=2), rnn_state)
        features = torch.cat((output, weighted, embedded), dim=2).squeeze(0)
        logits = self.fc_out(read_out(self.readout, self.dropout, features))
        return logits, (rnn_state, outputs, mask)


class LuongDecoder(TutorialDecoder):
    def __init__(self, cfg: LuongConfig, vocab: int, pad: int, enc: TutorialEncoder) -> None:
        feed = cfg.hidden_dim if cfg.input_feeding else 0
        super().__init__(cfg, vocab, pad, cfg.emb_dim + feed)
        self.input_feeding = cfg.input_feeding
        self.bridge_h = bridge(enc.out_dim, cfg.hidden_dim)
        self.bridge_c = bridge(enc.out_dim, cfg.hidden_dim) if self.is_lstm else None
        self.attention: nn.Module
        if cfg.score == AttentionScore.concat:
            self.attention = ConcatAttention(cfg.hidden_dim, enc.out_dim)
        else:
            project = cfg.score == AttentionScore.general
            self.attention = GeneralAttention(cfg.hidden_dim, enc.out_dim, project)
        self.concat = nn.Linear(enc.out_dim + cfg.hidden_dim, cfg.hidden_dim, bias=False)

    def init_state(self, enc: TutorialEncoder, outputs: Tensor, final: Hidden, src: Tensor) -> Any:
        mask = src.ne(self.pad).t()
        rnn_state = bridged_init(self, enc, final)
        feed = outputs.new_zeros(outputs.shape[1], self.concat.out_features)
        return rnn_state, feed, outputs, mask

    def forward(self, token: Tensor, state: Any) -> tuple[Tensor, Any]:
        rnn_state, feed, outputs, mask = state
        embedded = self.dropout(self.embedding(token.unsqueeze(0)))
        rnn_in = torch.cat((embedded, feed[None]), dim=2) if self.input_feeding else embedded
        output, rnn_state = self.rnn(rnn_in, rnn_state)
        output = output.squeeze(0)  # (B, H)
        a = self.attention(output, outputs, mask).unsqueeze(1)
        context = torch.bmm(a, outputs.transpose(0, 1)).squeeze(1)
        feed = self.dropout(torch.tanh(self.concat(torch.cat((context, output), dim=1))))
        return self.fc_out(feed), (rnn_state, feed, outputs, mask)


DECODERS: dict[str, Any] = {
    "sutskever": SutskeverDecoder,
    "cho": ChoDecoder,
    "bahdanau": BahdanauDecoder,
    "luong": LuongDecoder,
}


class TutorialSeq2Seq(nn.Module):
    """Encoder + decoder, one Python iteration per target step."""

    def __init__(self, cfg: RNNConfig, sizes: VocabSizes) -> None:
        super().__init__()
        self.encoder = TutorialEncoder(cfg, sizes.src, sizes.src_pad)
        self.decoder = DECODERS[cfg.arch](cfg, sizes.tgt, sizes.tgt_pad, self.encoder)

    def forward(self, src: Tensor, trg: Tensor, teacher_forcing_ratio: float = 0.5) -> Tensor:
        """src (S, B), trg (T, B) with <bos> first -> outputs (T, B, V), outputs[0] = 0."""
        trg_len, batch_size = trg.shape
        outputs = torch.zeros(trg_len, batch_size, self.decoder.vocab, device=src.device)
        enc_outputs, final = self.encoder(src)
        state = self.decoder.init_state(self.encoder, enc_outputs, final, src)
        token = trg[0]
        for t in range(1, trg_len):
            output, state = self.decoder(token, state)
            outputs[t] = output
            teacher_force = random.random() < teacher_forcing_ratio
            top1 = output.argmax(1)
            token = trg[t] if teacher_force else top1
        return outputs


def build_reference(cfg: RNNConfig, sizes: VocabSizes) -> TutorialSeq2Seq:
    if cfg.arch not in DECODERS:
        raise ValueError(f"no tutorial reference for arch {cfg.arch!r}")
    model = TutorialSeq2Seq(cfg, sizes)
    init_parameters(model, cfg.init, cfg.init_range)
    return model


def tutorial_train_step(
    model: TutorialSeq2Seq,
    optimizer: torch.optim.Optimizer,
    criterion: nn.Module,
    src: Tensor,
    trg: Tensor,
    ratio: float,
    clip: float | None,
) -> float:
    """The tutorials' ``train`` body for one batch; src (S, B), trg (T, B)."""
    model.train()
    optimizer.zero_grad()
    output = model(src, trg, ratio)
    output_dim = output.shape[-1]
    output = output[1:].view(-1, output_dim)
    loss = criterion(output, trg[1:].reshape(-1))
    loss.backward()
    if clip is not None:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
    optimizer.step()
    return loss.item()
