"""The decoding interface: what search, translation and evaluation need of a model.

A :class:`DecodingModel` encodes a batch once, then gives the next token's
logits one target step at a time from a state it owns.  Search never looks
inside an encoding or a state: it only asks for batch rows of them,
``enc.select(rows)`` and ``model.reorder_state(state, rows)``, to follow
hypotheses (beam search copies and reorders rows, and drops finished
sentences).  :class:`~nmt.models.seq2seq.Seq2Seq` (every architecture) and
:class:`~nmt.models.ensemble.Ensemble` implement it; so may any test double.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol, TypeVar

from torch import Tensor, nn

R = TypeVar("R", bound="Selectable")


class Selectable(Protocol):
    """Something with a batch dimension that can be cut to some of its rows."""

    def select(self: R, rows: Tensor | slice) -> R:
        """Batch rows ``rows`` only: an index (B',), repeats allowed, or a slice."""
        ...


class DecodingModel(Protocol):
    """What greedy, beam and sampling search call, with the shapes they expect.

    src (B, S) ids, src_lengths (B,); y_prev (B,) the previous target ids;
    logits (B, V) over the target vocabulary (any scale: search applies a
    log-softmax); attention (B, S) weights over the source, or None for a
    model without attention.  The encoding is :class:`Selectable`; the state
    is the model's own (typed Any here: each model has its own dataclass),
    reordered only by ``reorder_state``.
    """

    src_pad: int
    tgt_pad: int

    def encode(self, src: Tensor, src_lengths: Tensor) -> Any:
        """The source batch, encoded once."""
        ...

    def init_state(self, enc: Any, max_steps: int = 0) -> Any:
        """The decoder state before the first step, for at most ``max_steps`` steps."""
        ...

    def decode_step(self, y_prev: Tensor, state: Any, enc: Any) -> tuple[Tensor, Any, Any]:
        """One target step: logits (B, V), the next state, attention (B, S) or None."""
        ...

    def reorder_state(self, state: Any, rows: Tensor) -> Any:
        """The state of batch rows ``rows`` (B',) in that order, repeats allowed."""
        ...

    def __call__(
        self, src: Tensor, src_lengths: Tensor, tgt_in: Tensor, teacher_forcing: float = 1.0
    ) -> Tensor:
        """Teacher-forced scores (B, T, V) of targets tgt_in (B, T) (the loss reads them)."""
        ...

    # and, as an nn.Module: eval mode, and its parameters (counted in reports)
    def eval(self) -> Any: ...

    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...
