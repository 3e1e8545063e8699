"""Builders of the registered recurrent architectures (the Transformer's is in transformer.py)."""

from __future__ import annotations

from typing import Any

from nmt.config import (
    BahdanauConfig,
    ChoConfig,
    LuongConfig,
    RNNConfig,
    SutskeverConfig,
    embedding_dim,
)
from nmt.models.attention_decoders import BahdanauDecoder, LuongDecoder
from nmt.models.decoder import ChoDecoder, Decoder, DecoderSpec, RNNDecoder
from nmt.models.encoder import RNNEncoder
from nmt.models.registry import VocabSizes, register_model
from nmt.models.seq2seq import Seq2Seq, init_parameters


def _encoder(cfg: RNNConfig, sizes: VocabSizes) -> RNNEncoder:
    return RNNEncoder(
        vocab_size=sizes.src,
        emb_dim=embedding_dim(cfg),
        hidden_dim=cfg.hidden_dim,
        num_layers=cfg.num_layers,
        cell=cfg.cell,
        bidirectional=cfg.bidirectional,
        dropout=cfg.dropout,
        pad_idx=sizes.src_pad,
    )


def _decoder_spec(cfg: RNNConfig, sizes: VocabSizes, encoder: RNNEncoder) -> DecoderSpec:
    """The config fields every decoder reads, whatever its architecture."""
    return DecoderSpec(
        vocab_size=sizes.tgt,
        emb_dim=embedding_dim(cfg),
        hidden_dim=cfg.hidden_dim,
        num_layers=cfg.num_layers,
        cell=cfg.cell,
        dropout=cfg.dropout,
        pad_idx=sizes.tgt_pad,
        enc_dim=encoder.output_dim,
        tie_embeddings=cfg.tie_embeddings,
    )


def _assemble(
    cfg: RNNConfig, sizes: VocabSizes, encoder: RNNEncoder, decoder: Decoder[Any]
) -> Seq2Seq:
    model = Seq2Seq(encoder=encoder, decoder=decoder, src_pad=sizes.src_pad, tgt_pad=sizes.tgt_pad)
    init_parameters(model, cfg.init, cfg.init_range)
    return model


@register_model("sutskever")
def build_sutskever(cfg: SutskeverConfig, sizes: VocabSizes) -> Seq2Seq:
    """Sutskever et al. 2014: multi-layer encoder; its final states start the decoder."""
    encoder = _encoder(cfg, sizes)
    decoder = RNNDecoder(spec=_decoder_spec(cfg, sizes, encoder))
    return _assemble(cfg, sizes, encoder, decoder)


@register_model("cho")
def build_cho(cfg: ChoConfig, sizes: VocabSizes) -> Seq2Seq:
    """Cho et al. 2014: one summary vector c of the source, wired by ``model.context``."""
    encoder = _encoder(cfg, sizes)
    spec = _decoder_spec(cfg, sizes, encoder)
    decoder = ChoDecoder(
        spec=spec,
        context=cfg.context,
        maxout=cfg.maxout,
        readout=cfg.readout,
        summary=cfg.summary,
    )
    return _assemble(cfg, sizes, encoder, decoder)


@register_model("bahdanau")
def build_bahdanau(cfg: BahdanauConfig, sizes: VocabSizes) -> Seq2Seq:
    """Bahdanau et al. 2015: (bidirectional) encoder, additive attention, deep output."""
    encoder = _encoder(cfg, sizes)
    spec = _decoder_spec(cfg, sizes, encoder)
    decoder = BahdanauDecoder(
        spec=spec, decoder_init=cfg.decoder_init, maxout=cfg.maxout, readout=cfg.readout
    )
    return _assemble(cfg, sizes, encoder, decoder)


@register_model("luong")
def build_luong(cfg: LuongConfig, sizes: VocabSizes) -> Seq2Seq:
    """Luong et al. 2015: global attention with a dot/general/concat score."""
    encoder = _encoder(cfg, sizes)
    spec = _decoder_spec(cfg, sizes, encoder)
    decoder = LuongDecoder(spec=spec, score=cfg.score, input_feeding=cfg.input_feeding)
    return _assemble(cfg, sizes, encoder, decoder)
