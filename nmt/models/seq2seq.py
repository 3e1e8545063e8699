"""The encoder-decoder wrapper every architecture shares."""

from __future__ import annotations

from typing import Any, Protocol

import torch
from torch import Tensor, nn

from nmt.config import InitKind
from nmt.models.decoder import State, reorder_state
from nmt.models.encoder import EncoderOutput


class Decoder(Protocol):
    parallel_teacher_forcing: bool

    def init_state(self, enc: EncoderOutput) -> State: ...

    def step(
        self, y_prev: Tensor, state: State, enc: EncoderOutput
    ) -> tuple[Tensor, State, Tensor | None]: ...

    def forward_sequence(self, tgt_in: Tensor, state: State, enc: EncoderOutput) -> Tensor: ...

    def project(self, features: Tensor) -> Tensor: ...


class Seq2Seq(nn.Module):
    """Encoder + decoder.  Works on integer ids only; knows nothing of text.

    ``forward`` returns logits (B, T, V) for targets ``tgt_in`` (B, T), which
    start with ``<bos>``.  With ``teacher_forcing < 1`` each sentence, at each
    step, feeds back its own greedy prediction instead of the reference token
    with probability ``1 - teacher_forcing`` (Bengio et al. 2015).
    """

    encoder: Any  # an nn.Module: (src, src_lengths) -> EncoderOutput
    decoder: Any  # an nn.Module following the Decoder protocol

    def __init__(self, *, encoder: nn.Module, decoder: nn.Module, src_pad: int, tgt_pad: int):
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.src_pad = src_pad
        self.tgt_pad = tgt_pad

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        return self.encoder(src, src_lengths)

    def init_state(self, enc: EncoderOutput) -> State:
        return self.decoder.init_state(enc)

    def decode_step(
        self, y_prev: Tensor, state: State, enc: EncoderOutput
    ) -> tuple[Tensor, State, Tensor | None]:
        """One step: y_prev (B,) -> logits (B, V), new state, attention (B, S) or None."""
        features, state, attn = self.decoder.step(y_prev, state, enc)
        return self.decoder.project(features), state, attn

    @staticmethod
    def reorder_state(state: State, index: Tensor) -> State:
        return reorder_state(state, index)

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0
    ) -> Tensor:
        enc = self.encode(src, src_lengths)
        state = self.decoder.init_state(enc)
        if teacher_forcing >= 1.0 and self.decoder.parallel_teacher_forcing:
            return self.decoder.project(self.decoder.forward_sequence(tgt_in, state, enc))
        if teacher_forcing >= 1.0:
            features = []
            for t in range(tgt_in.size(1)):
                out, state, _ = self.decoder.step(tgt_in[:, t], state, enc)
                features.append(out)
            return self.decoder.project(torch.stack(features, dim=1))
        return self._forward_sampled(tgt_in, state, enc, teacher_forcing)

    def _forward_sampled(
        self, tgt_in: Tensor, state: State, enc: EncoderOutput, ratio: float
    ) -> Tensor:
        # The coin flips are drawn up front, on the device: no host sync per step.
        use_gold = torch.rand(tgt_in.shape, device=tgt_in.device) < ratio
        y = tgt_in[:, 0]
        logits = []
        for t in range(tgt_in.size(1)):
            out, state, _ = self.decoder.step(y, state, enc)
            step_logits = self.decoder.project(out)
            logits.append(step_logits)
            if t + 1 < tgt_in.size(1):
                y = torch.where(use_gold[:, t + 1], tgt_in[:, t + 1], step_logits.argmax(-1))
        return torch.stack(logits, dim=1)


def init_parameters(model: nn.Module, kind: InitKind, init_range: float) -> None:
    """Initialise in place.

    ``uniform``: U(-r, r) on every parameter (Sutskever et al. 2014, sec. 3.4).
    ``xavier``: Glorot & Bengio 2010 on each gate's matrix of the RNNs and on
    linear layers, zeros on biases; embeddings keep PyTorch's N(0, 1) (Xavier's
    bound over a vocabulary-sized fan-in makes them tiny and slows learning
    badly).  ``default`` keeps PyTorch's initialisation everywhere.
    """
    if kind == InitKind.uniform:
        for param in model.parameters():
            nn.init.uniform_(param, -init_range, init_range)
    elif kind == InitKind.xavier:
        embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
        for module in model.modules():
            if isinstance(module, nn.RNNBase):
                _xavier_rnn(module)
            elif isinstance(module, nn.Linear) and id(module.weight) not in embeddings:
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
    for module in model.modules():  # keep padding embeddings at zero
        if isinstance(module, nn.Embedding) and module.padding_idx is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()


def _xavier_rnn(rnn: nn.RNNBase) -> None:
    """Xavier on each gate's block of an RNN's weight matrices, zero biases."""
    gates = {"LSTM": 4, "GRU": 3}.get(rnn.mode, 1)
    for name, param in rnn.named_parameters():
        if name.startswith("weight"):
            for block in param.data.chunk(gates, dim=0):
                nn.init.xavier_uniform_(block)
        else:
            nn.init.zeros_(param)
