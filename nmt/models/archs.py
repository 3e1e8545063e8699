"""Builders of the registered architectures."""

from __future__ import annotations

from nmt.config import SutskeverConfig
from nmt.models.decoder import RNNDecoder
from nmt.models.encoder import RNNEncoder
from nmt.models.registry import VocabSizes, register_model
from nmt.models.seq2seq import Seq2Seq, init_parameters


@register_model("sutskever")
def build_sutskever(cfg: SutskeverConfig, sizes: VocabSizes) -> Seq2Seq:
    """Sutskever et al. 2014: multi-layer encoder; its final states start the decoder."""
    encoder = RNNEncoder(
        vocab_size=sizes.src,
        emb_dim=cfg.emb_dim,
        hidden_dim=cfg.hidden_dim,
        num_layers=cfg.num_layers,
        cell=cfg.cell,
        bidirectional=cfg.bidirectional,
        dropout=cfg.dropout,
        pad_idx=sizes.src_pad,
    )
    decoder = RNNDecoder(
        vocab_size=sizes.tgt,
        emb_dim=cfg.emb_dim,
        hidden_dim=cfg.hidden_dim,
        num_layers=cfg.num_layers,
        cell=cfg.cell,
        dropout=cfg.dropout,
        pad_idx=sizes.tgt_pad,
        enc_dim=encoder.output_dim,
        tie_embeddings=cfg.tie_embeddings,
    )
    model = Seq2Seq(encoder=encoder, decoder=decoder, src_pad=sizes.src_pad, tgt_pad=sizes.tgt_pad)
    init_parameters(model, cfg.init, cfg.init_range)
    return model
