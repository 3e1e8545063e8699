"""Recurrent encoders over padded, packed source batches."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from nmt.config import CellType

RNN_CLASSES: dict[CellType, Any] = {
    CellType.rnn: nn.RNN,
    CellType.gru: nn.GRU,
    CellType.lstm: nn.LSTM,
}


def make_rnn(
    cell: CellType,
    *,
    input_size: int,
    hidden_size: int,
    num_layers: int,
    dropout: float,
    bidirectional: bool = False,
) -> nn.RNNBase:
    """A batch-first ``nn.RNN``/``nn.GRU``/``nn.LSTM``; dropout between layers only."""
    return RNN_CLASSES[cell](
        input_size=input_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        dropout=dropout if num_layers > 1 else 0.0,
        bidirectional=bidirectional,
        batch_first=True,
    )


@dataclass
class EncoderOutput:
    """What the decoder may read from the encoder.

    outputs: (B, S, K) states of the last layer (K = D*H for an RNN), zeros at
        padded positions.
    mask: (B, S) bool, True on real source tokens.
    hidden: (L, B, D*H) an RNN encoder's final state of each layer, both
        directions concatenated; None for encoders without one (the Transformer).
    cell: (L, B, D*H) final LSTM memory cells, or None.
    """

    outputs: Tensor
    mask: Tensor
    hidden: Tensor | None = None
    cell: Tensor | None = None

    # Fields laid out like RNN states, batch at dim 1; the others have it at dim 0.
    _BATCH_AT_DIM_1: ClassVar[frozenset[str]] = frozenset({"hidden", "cell"})

    def final_hidden(self) -> Tensor:
        """``hidden``, which the recurrent decoders start from; refused when absent."""
        if self.hidden is None:
            raise ValueError("this decoder starts from an RNN encoder's final states")
        return self.hidden

    def select(self, rows: Tensor | slice) -> EncoderOutput:
        """The same encoding for batch rows ``rows`` only, B -> B' rows.

        ``rows`` is an index (B',) (repeats allowed: beam search copies each
        sentence to its K rows and drops the finished ones) or a slice (training
        keeps the first B' sentences, still inside their targets; views, no copy).
        """
        changes = {}
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, Tensor):
                dim = 1 if field.name in self._BATCH_AT_DIM_1 else 0
                changes[field.name] = _take_rows(value, dim, rows)
        return dataclasses.replace(self, **changes)


def _take_rows(tensor: Tensor, dim: int, rows: Tensor | slice) -> Tensor:
    if isinstance(rows, slice):
        return tensor[(slice(None),) * dim + (rows,)]
    return tensor.index_select(dim, rows)


class RNNEncoder(nn.Module):
    """Embedding, dropout and a (bi)directional multi-layer RNN over packed sequences."""

    def __init__(
        self,
        *,
        vocab_size: int,
        emb_dim: int,
        hidden_dim: int,
        num_layers: int,
        cell: CellType,
        bidirectional: bool,
        dropout: float,
        pad_idx: int,
    ) -> None:
        super().__init__()
        self.num_layers = num_layers
        self.num_directions = 2 if bidirectional else 1
        self.output_dim = hidden_dim * self.num_directions
        self.embedding = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_idx)
        self.dropout = nn.Dropout(dropout)
        self.rnn = make_rnn(
            cell,
            input_size=emb_dim,
            hidden_size=hidden_dim,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
        )

    def forward(self, src: Tensor, lengths: Tensor) -> EncoderOutput:
        """src: (B, S) ids; lengths: (B,) real lengths (>= 1)."""
        embedded = self.dropout(self.embedding(src))
        packed = pack_padded_sequence(
            embedded, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        packed_out, final = self.rnn(packed)
        outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=src.size(1))
        hidden, cell = final if isinstance(final, tuple) else (final, None)
        mask = (
            torch.arange(src.size(1), device=src.device)[None, :] < lengths.to(src.device)[:, None]
        )
        return EncoderOutput(
            outputs=outputs,
            mask=mask,
            hidden=self._join_directions(hidden),
            cell=None if cell is None else self._join_directions(cell),
        )

    def _join_directions(self, state: Tensor) -> Tensor:
        """(L*D, B, H) -> (L, B, D*H): forward and backward states side by side."""
        if self.num_directions == 1:
            return state
        layers, batch, hidden = self.num_layers, state.size(1), state.size(2)
        state = state.view(layers, 2, batch, hidden)
        return torch.cat([state[:, 0], state[:, 1]], dim=-1)
