"""The encoder-decoder wrapper every architecture shares."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from nmt.config import InitKind
from nmt.models.decoder import Decoder
from nmt.models.encoder import EncoderOutput


class Seq2Seq(nn.Module):
    """Encoder + decoder.  Works on integer ids only; knows nothing of text.

    It is a :class:`~nmt.models.interface.DecodingModel` over its encoder's
    :class:`EncoderOutput` and its decoder's own state (whatever type the
    decoder defines), which the decoder's state reorders itself.

    ``forward`` returns logits (B, T, V) for targets ``tgt_in`` (B, T), which
    start with ``<bos>``.  With ``teacher_forcing < 1`` each sentence, at each
    step, feeds back its own greedy prediction instead of the reference token
    with probability ``1 - teacher_forcing`` (Bengio et al. 2015).
    """

    encoder: Any  # an nn.Module: (src, src_lengths) -> EncoderOutput

    def __init__(
        self, *, encoder: nn.Module, decoder: Decoder[Any], src_pad: int, tgt_pad: int
    ) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder
        self.src_pad = src_pad
        self.tgt_pad = tgt_pad

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        return self.encoder(src, src_lengths)

    def init_state(self, enc: EncoderOutput, max_steps: int = 0) -> Any:
        """The decoder's state before the first of at most ``max_steps`` steps."""
        return self.decoder.init_state(enc, max_steps)

    def decode_step(
        self, y_prev: Tensor, state: Any, enc: EncoderOutput
    ) -> tuple[Tensor, Any, Tensor | None]:
        """One step: y_prev (B,) -> logits (B, V), new state, attention (B, S) or None."""
        features, state, attn = self.decoder.step(y_prev, state, enc)
        return self.decoder.project(features), state, attn

    def reorder_state(self, state: Any, rows: Tensor) -> Any:
        """Batch rows ``rows`` (B',) of a state, in that order (repeats allowed)."""
        return state.select(rows)

    def forward(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0
    ) -> Tensor:
        enc = self.encode(src, src_lengths)
        if teacher_forcing >= 1.0:
            state = self.decoder.init_state(enc)
            return self.decoder.project(self.decoder.forward_sequence(tgt_in, state, enc))
        state = self.decoder.init_state(enc, tgt_in.size(1))
        return self._forward_sampled(tgt_in, state, enc, teacher_forcing)

    def forward_packed(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0
    ) -> tuple[Tensor, Tensor]:
        """Logits (N, V) at the N real target positions only, and their flat
        positions (N,) in ``tgt_in.reshape(-1)`` (the same in ``tgt_out``), for training.

        The logits ``forward`` gives at those positions, without the work on
        padding: sentences are sorted by target length (longest first) and, as
        in a PackedSequence, step t runs only the sentences still inside their
        target; the output is time-major (step 0 of every sentence, then step 1
        of those that have one, ...).  A target position is real where
        ``tgt_in`` is not padding (``<bos> y1 .. yn`` lines up with
        ``y1 .. yn <eos>``).  One host sync per batch, for the lengths.
        """
        lengths, order = (tgt_in != self.tgt_pad).sum(1).sort(descending=True, stable=True)
        host_lengths = lengths.cpu()
        width = tgt_in.size(1)
        positions = order[:, None] * width + torch.arange(width, device=tgt_in.device)
        index = pack_padded_sequence(positions, host_lengths, batch_first=True).data
        src, src_lengths, tgt_in = (t.index_select(0, order) for t in (src, src_lengths, tgt_in))
        enc = self.encode(src, src_lengths)
        if teacher_forcing >= 1.0 and self.decoder.parallel_teacher_forcing:
            features = self.decoder.forward_sequence(tgt_in, self.decoder.init_state(enc), enc)
            packed = pack_padded_sequence(features, host_lengths, batch_first=True).data
            return self.decoder.project(packed), index
        batch_sizes = (torch.arange(int(host_lengths[0]))[:, None] < host_lengths).sum(1)
        state = self.decoder.init_state(enc, width)
        return self._packed_steps(tgt_in, state, enc, batch_sizes.tolist(), teacher_forcing), index

    def _packed_steps(
        self, tgt_in: Tensor, state: Any, enc: EncoderOutput, sizes: list[int], ratio: float
    ) -> Tensor:
        """Step loop over length-sorted rows; step t runs the first ``sizes[t]``."""
        sampled = ratio < 1.0
        use_gold = torch.rand(tgt_in.shape, device=tgt_in.device) < ratio if sampled else None
        y = tgt_in[:, 0]
        outputs = []
        for t, rows in enumerate(sizes):
            if rows < y.size(0):  # the longest ``rows`` sentences go on; views, no copies
                state, enc, y = state.select(slice(rows)), enc.select(slice(rows)), y[:rows]
            out, state, _ = self.decoder.step(y, state, enc)
            if use_gold is not None:
                out = self.decoder.project(out)
                if t + 1 < len(sizes):
                    y = torch.where(use_gold[:rows, t + 1], tgt_in[:rows, t + 1], out.argmax(-1))
            elif t + 1 < len(sizes):
                y = tgt_in[:rows, t + 1]
            outputs.append(out)
        stacked = torch.cat(outputs)
        return stacked if sampled else self.decoder.project(stacked)

    def _forward_sampled(
        self, tgt_in: Tensor, state: Any, enc: EncoderOutput, ratio: float
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


def share_source_embedding(model: Seq2Seq) -> None:
    """Make the source embedding the target embedding's matrix, so that with a
    tied decoder one (V, E) Parameter is the source embedding, the target
    embedding and the output layer (``model.tie_embeddings=all``; one joint
    vocabulary, so the same id is the same piece on both sides)."""
    if model.encoder.embedding.weight.shape != model.decoder.embedding.weight.shape:
        raise ValueError("sharing the embeddings needs one vocabulary for both sides")
    model.encoder.embedding.weight = model.decoder.embedding.weight
