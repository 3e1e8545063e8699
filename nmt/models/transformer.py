"""The Transformer (Vaswani et al. 2017) on the shared :class:`Seq2Seq`.

Encoder: token embeddings times sqrt(d) plus sinusoidal positions (sec. 3.4,
3.5), then layers of self-attention and a position-wise feed-forward network
(sec. 3.1, 3.3).  Decoder: the same with masked (causal) self-attention and
attention over the encoder states.  Each sublayer f sits in a residual
connection, normalised before (``norm=pre``: x + f(LN(x)), with a final LN on
top of each stack; Wang et al. 2019, Xiong et al. 2020) or after
(``norm=post``: LN(x + f(x)), the paper's).  Attention is
``F.scaled_dot_product_attention``.

Decoding is incremental.  ``init_state(enc, max_steps)`` computes every
layer's cross-attention keys and values once per batch and allocates the
self-attention key/value cache for ``max_steps`` steps; step t writes its
keys and values at position t and attends to positions 0..t.  Beam search
reorders the cache rows through the state's ``select``.  One decoder layer
(``model.attention_layer``) also returns its cross-attention weights,
averaged over the heads, as the model's attention (B, S): what attention
plots, ``replace_unk`` and the server's heatmap read.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nmt.config import NormPlace, TransformerConfig
from nmt.models.decoder import Decoder, DecoderSpec
from nmt.models.encoder import EncoderOutput
from nmt.models.registry import VocabSizes, register_model
from nmt.models.seq2seq import Seq2Seq, init_parameters

KeysValues = tuple[Tensor, Tensor]


class SinusoidalPositions:
    """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d))
    (Vaswani et al. 2017, sec. 3.5).  A table computed once and grown on demand;
    not a buffer: nothing to save, and nothing for DDP to broadcast."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.table = self._make(256, torch.device("cpu"))

    def _make(self, length: int, device: torch.device) -> Tensor:
        position = torch.arange(length, dtype=torch.float32, device=device)[:, None]
        rate = torch.exp(
            torch.arange(0, self.dim, 2, dtype=torch.float32, device=device)
            * (-math.log(10000.0) / self.dim)
        )
        table = torch.zeros(length, self.dim, device=device)
        table[:, 0::2] = torch.sin(position * rate)
        table[:, 1::2] = torch.cos(position * rate[: self.dim // 2])
        return table

    def __call__(self, start: int, length: int, device: torch.device) -> Tensor:
        """Positions start .. start+length-1: (length, D)."""
        end = start + length
        if end > self.table.size(0) or self.table.device != device:
            self.table = self._make(max(end, 2 * self.table.size(0)), device)
        return self.table[start:end]


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention (Vaswani et al. 2017, sec. 3.2):
    softmax(Q K^T / sqrt(d_k)) V in each of h heads of d_k = d / h, then W_O.

    Shapes: x (B, T, D), memory (B, S, D); keys and values (B, h, S, d_k);
    mask (B, 1, 1, S) or None, True where a key may be attended to.
    """

    def __init__(self, *, d_model: int, num_heads: int, dropout: float) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.dropout = dropout
        self.query = nn.Linear(d_model, d_model)
        self.key_value = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def _heads(self, x: Tensor) -> Tensor:
        """(B, T, D) -> (B, h, T, d_k)."""
        return x.unflatten(-1, (self.num_heads, -1)).transpose(1, 2)

    def keys_values(self, memory: Tensor) -> KeysValues:
        """Keys and values of memory (B, S, D): two (B, h, S, d_k)."""
        keys, values = self.key_value(memory).chunk(2, dim=-1)
        return self._heads(keys), self._heads(values)

    def forward(
        self,
        x: Tensor,
        keys: Tensor,
        values: Tensor,
        *,
        mask: Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Queries from x (B, T, D) -> output (B, T, D) and, with ``need_weights``,
        the attention weights averaged over the heads (B, T, S)."""
        query = self._heads(self.query(x))
        drop = self.dropout if self.training else 0.0
        weights = None
        # by hand when the weights are asked for (the fused kernel does not return
        # them) and for one query per row (a decoding step), where the fused
        # kernel's per-call set-up costs more than the two small products
        if need_weights or (query.size(-2) == 1 and not causal):
            scores = query @ keys.transpose(-2, -1) / math.sqrt(query.size(-1))
            if mask is not None:
                scores = scores.masked_fill(~mask, float("-inf"))
            probs = scores.softmax(dim=-1)
            context = F.dropout(probs, drop, self.training) @ values
            weights = probs.mean(dim=1) if need_weights else None
        else:
            context = F.scaled_dot_product_attention(
                query, keys, values, attn_mask=mask, dropout_p=drop, is_causal=causal
            )
        return self.out(context.transpose(1, 2).flatten(2)), weights


class _Residual(nn.Module):
    """The residual wiring of a layer's sublayers: with ``pre_norm`` the input of
    sublayer i is LN_i(x) and its output x + dropout(f); else the input is x and
    the output LN_i(x + dropout(f))."""

    def __init__(self, *, d_model: int, sublayers: int, dropout: float, pre_norm: bool) -> None:
        super().__init__()
        self.pre_norm = pre_norm
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(sublayers))
        self.drop = nn.Dropout(dropout)

    def _in(self, i: int, x: Tensor) -> Tensor:
        return self.norms[i](x) if self.pre_norm else x

    def _out(self, i: int, x: Tensor, f: Tensor) -> Tensor:
        out = x + self.drop(f)
        return out if self.pre_norm else self.norms[i](out)


def _feed_forward(d_model: int, ffn_dim: int) -> nn.Sequential:
    """FFN(x) = max(0, x W_1 + b_1) W_2 + b_2 (sec. 3.3): (..., D) -> (..., D)."""
    return nn.Sequential(nn.Linear(d_model, ffn_dim), nn.ReLU(), nn.Linear(ffn_dim, d_model))


@dataclass(frozen=True)
class LayerSizes:
    d_model: int
    num_heads: int
    ffn_dim: int
    dropout: float
    attention_dropout: float
    pre_norm: bool


def _attention(sizes: LayerSizes) -> MultiHeadAttention:
    return MultiHeadAttention(
        d_model=sizes.d_model, num_heads=sizes.num_heads, dropout=sizes.attention_dropout
    )


class EncoderLayer(_Residual):
    """Self-attention, then the feed-forward network: (B, S, D) -> (B, S, D)."""

    def __init__(self, sizes: LayerSizes) -> None:
        super().__init__(
            d_model=sizes.d_model, sublayers=2, dropout=sizes.dropout, pre_norm=sizes.pre_norm
        )
        self.attention = _attention(sizes)
        self.feed_forward = _feed_forward(sizes.d_model, sizes.ffn_dim)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        h = self._in(0, x)
        x = self._out(0, x, self.attention(h, *self.attention.keys_values(h), mask=mask)[0])
        return self._out(1, x, self.feed_forward(self._in(1, x)))


class DecoderLayer(_Residual):
    """Causal self-attention, attention over the encoder, the feed-forward network."""

    def __init__(self, sizes: LayerSizes) -> None:
        super().__init__(
            d_model=sizes.d_model, sublayers=3, dropout=sizes.dropout, pre_norm=sizes.pre_norm
        )
        self.self_attention = _attention(sizes)
        self.cross_attention = _attention(sizes)
        self.feed_forward = _feed_forward(sizes.d_model, sizes.ffn_dim)

    def _self_attend(self, h: Tensor, cache: KeysValues | None, step: int) -> Tensor:
        """Over all of h (B, T, D) with a causal mask; or, with a cache (B, h, T_max,
        d_k), over the cached positions 0..step-1 and h's own (written at step..)."""
        keys, values = self.self_attention.keys_values(h)
        if cache is None:
            return self.self_attention(h, keys, values, causal=True)[0]
        end = step + h.size(1)
        cache[0][:, :, step:end] = keys
        cache[1][:, :, step:end] = values
        return self.self_attention(h, cache[0][:, :, :end], cache[1][:, :, :end])[0]

    def forward(
        self,
        x: Tensor,
        memory: KeysValues,
        mask: Tensor,
        *,
        cache: KeysValues | None = None,
        step: int = 0,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """x (B, T, D) -> (B, T, D), and the cross-attention weights (B, T, S) if asked."""
        x = self._out(0, x, self._self_attend(self._in(0, x), cache, step))
        attended, weights = self.cross_attention(
            self._in(1, x), *memory, mask=mask, need_weights=need_weights
        )
        x = self._out(1, x, attended)
        return self._out(2, x, self.feed_forward(self._in(2, x))), weights


def _embed(
    embedding: nn.Embedding, positions: SinusoidalPositions, tokens: Tensor, start: int
) -> Tensor:
    """E y * sqrt(d) + PE (sec. 3.4, 3.5): ids (B, T) -> (B, T, D)."""
    scale = math.sqrt(embedding.embedding_dim)
    return embedding(tokens) * scale + positions(start, tokens.size(1), tokens.device)


class TransformerEncoder(nn.Module):
    """Embedding, dropout and a stack of :class:`EncoderLayer`: src (B, S) ->
    :class:`EncoderOutput` with outputs (B, S, D) (zeros at padded positions)
    and no RNN final states."""

    def __init__(self, *, vocab_size: int, pad_idx: int, num_layers: int, sizes: LayerSizes):
        super().__init__()
        self.output_dim = sizes.d_model
        self.embedding = nn.Embedding(vocab_size, sizes.d_model, padding_idx=pad_idx)
        self.positions = SinusoidalPositions(sizes.d_model)
        self.dropout = nn.Dropout(sizes.dropout)
        self.layers = nn.ModuleList(EncoderLayer(sizes) for _ in range(num_layers))
        self.final_norm = nn.LayerNorm(sizes.d_model) if sizes.pre_norm else nn.Identity()

    def forward(self, src: Tensor, lengths: Tensor) -> EncoderOutput:
        """src (B, S) ids; lengths (B,) real lengths (>= 1)."""
        mask = (
            torch.arange(src.size(1), device=src.device)[None, :] < lengths.to(src.device)[:, None]
        )
        x = self.dropout(_embed(self.embedding, self.positions, src, 0))
        attend = mask[:, None, None, :]
        for layer in self.layers:
            x = layer(x, attend)
        outputs = self.final_norm(x).masked_fill(~mask[:, :, None], 0.0)
        return EncoderOutput(outputs=outputs, mask=mask)


@dataclass
class TransformerState:
    """The decoder's state: per layer (stacked at dim 0), the self-attention
    cache (L, B, h, T_max, d_k) filled at positions < ``step``, and the
    cross-attention keys and values of the source (L, B, h, S, d_k);
    ``sources`` (B,) says which sentence of the encoded batch each row's
    cross-attention keys and values belong to."""

    self_keys: Tensor
    self_values: Tensor
    cross_keys: Tensor
    cross_values: Tensor
    sources: Tensor
    step: int = 0

    def select(self, rows: Tensor | slice) -> TransformerState:
        """The state of batch rows ``rows`` only.

        Beam search calls this at every step to follow each hypothesis's
        parent, so two copies are saved there.  The cross-attention keys and
        values depend only on a row's source sentence: when every row keeps
        its sentence (beams reordered within their sentence) they are kept as
        they are.  Without autograd, a reorder that keeps the number of rows
        writes the cache's filled positions back into the same cache (no new
        cache per step), as ``step`` already writes into it: the state it was
        called on is then used up."""
        sources = self.sources[rows]
        same_sources = sources.shape == self.sources.shape and torch.equal(sources, self.sources)
        cross = (
            (self.cross_keys, self.cross_values)
            if same_sources
            else (_rows(self.cross_keys, rows), _rows(self.cross_values, rows))
        )
        return TransformerState(
            self_keys=_cache_rows(self.self_keys, rows, self.step),
            self_values=_cache_rows(self.self_values, rows, self.step),
            cross_keys=cross[0],
            cross_values=cross[1],
            sources=sources,
            step=self.step,
        )


def _rows(tensor: Tensor, rows: Tensor | slice) -> Tensor:
    return tensor[:, rows] if isinstance(rows, slice) else tensor.index_select(1, rows)


def _cache_rows(cache: Tensor, rows: Tensor | slice, filled: int) -> Tensor:
    """The cache (L, B, h, T_max, d_k) of ``rows``: only its filled positions
    are copied, in place when the row count stays and autograd is off."""
    if isinstance(rows, slice):
        return cache[:, rows]
    kept = cache[:, :, :, :filled].index_select(1, rows)
    if rows.numel() == cache.size(1) and not torch.is_grad_enabled():
        cache[:, :, :, :filled] = kept
        return cache
    fresh = cache.new_empty(cache.size(0), rows.numel(), *cache.shape[2:])
    fresh[:, :, :, :filled] = kept
    return fresh


class TransformerDecoder(Decoder[TransformerState]):
    """Embedding, dropout, a stack of :class:`DecoderLayer` and the output layer
    (tied to the embedding when asked).  Every target position attends only to
    earlier ones, so teacher forcing runs all steps in one pass.

    Shapes: y_prev (B,), tgt_in (B, T), features (B, [T,] D), weights (B, S).
    """

    parallel_teacher_forcing = True

    def __init__(self, *, spec: DecoderSpec, sizes: LayerSizes, attention_layer: int) -> None:
        super().__init__(spec)
        self.positions = SinusoidalPositions(sizes.d_model)
        self.layers = nn.ModuleList(DecoderLayer(sizes) for _ in range(spec.num_layers))
        self.final_norm = nn.LayerNorm(sizes.d_model) if sizes.pre_norm else nn.Identity()
        self.attention_layer = attention_layer % spec.num_layers
        self._add_output()

    def _layers(self) -> list[DecoderLayer]:
        return list(self.layers)  # type: ignore[arg-type]

    def embed(self, tokens: Tensor, start: int = 0) -> Tensor:
        """Ids (B, T) at positions start.. -> dropped-out E y * sqrt(d) + PE (B, T, D)."""
        return self.dropout(_embed(self.embedding, self.positions, tokens, start))

    def init_state(self, enc: EncoderOutput, max_steps: int = 0) -> TransformerState:
        memory = [layer.cross_attention.keys_values(enc.outputs) for layer in self._layers()]
        keys = torch.stack([k for k, _ in memory])  # (L, B, h, S, d_k)
        values = torch.stack([v for _, v in memory])
        cache_shape = (*keys.shape[:3], max_steps, keys.size(-1))
        return TransformerState(
            self_keys=keys.new_zeros(cache_shape),
            self_values=keys.new_zeros(cache_shape),
            cross_keys=keys,
            cross_values=values,
            sources=torch.arange(keys.size(1), device=keys.device),
        )

    def step(
        self, y_prev: Tensor, state: TransformerState, enc: EncoderOutput
    ) -> tuple[Tensor, TransformerState, Tensor | None]:
        step = state.step
        if step >= state.self_keys.size(3):
            raise ValueError(f"the decoder state was made for {step} steps (init_state max_steps)")
        # under autograd (scheduled sampling in training) each layer writes into a
        # copy of its cache: the old one is kept for the backward pass
        copies = torch.is_grad_enabled()
        caches = [
            (k.clone(), v.clone()) if copies else (k, v)
            for k, v in zip(state.self_keys, state.self_values, strict=True)
        ]
        x = self.embed(y_prev[:, None], step)
        mask = enc.mask[:, None, None, :]
        weights = None
        for i, layer in enumerate(self.layers):
            x, layer_weights = layer(
                x,
                (state.cross_keys[i], state.cross_values[i]),
                mask,
                cache=caches[i],
                step=step,
                need_weights=i == self.attention_layer,
            )
            weights = layer_weights if layer_weights is not None else weights
        if copies:
            keys, values = zip(*caches, strict=True)
            state = dataclasses.replace(
                state, self_keys=torch.stack(keys), self_values=torch.stack(values)
            )
        assert weights is not None
        next_state = dataclasses.replace(state, step=step + 1)
        return self.final_norm(x)[:, 0], next_state, weights[:, 0]

    def forward_sequence(
        self, tgt_in: Tensor, state: TransformerState, enc: EncoderOutput
    ) -> Tensor:
        x = self.embed(tgt_in)
        mask = enc.mask[:, None, None, :]
        for i, layer in enumerate(self.layers):
            x, _ = layer(x, (state.cross_keys[i], state.cross_values[i]), mask)
        return self.final_norm(x)


@register_model("transformer")
def build_transformer(cfg: TransformerConfig, sizes: VocabSizes) -> Seq2Seq:
    """Vaswani et al. 2017; embeddings N(0, d^-1/2), so that E y * sqrt(d) has unit scale."""
    layer = LayerSizes(
        d_model=cfg.d_model,
        num_heads=cfg.num_heads,
        ffn_dim=cfg.ffn_dim,
        dropout=cfg.dropout,
        attention_dropout=cfg.attention_dropout,
        pre_norm=cfg.norm == NormPlace.pre,
    )
    encoder = TransformerEncoder(
        vocab_size=sizes.src, pad_idx=sizes.src_pad, num_layers=cfg.encoder_layers, sizes=layer
    )
    spec = DecoderSpec(
        vocab_size=sizes.tgt,
        emb_dim=cfg.d_model,
        hidden_dim=cfg.d_model,
        num_layers=cfg.decoder_layers,
        cell=None,
        dropout=cfg.dropout,
        pad_idx=sizes.tgt_pad,
        enc_dim=cfg.d_model,
        tie_embeddings=bool(cfg.tie_embeddings),
    )
    decoder = TransformerDecoder(spec=spec, sizes=layer, attention_layer=cfg.attention_layer)
    model = Seq2Seq(encoder=encoder, decoder=decoder, src_pad=sizes.src_pad, tgt_pad=sizes.tgt_pad)
    init_parameters(model, cfg.init, cfg.init_range)
    for embedding in (encoder.embedding, decoder.embedding):
        nn.init.normal_(embedding.weight, 0.0, cfg.d_model**-0.5)
        with torch.no_grad():
            embedding.weight[embedding.padding_idx].zero_()
    return model
