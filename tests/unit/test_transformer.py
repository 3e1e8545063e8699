"""The Transformer: incremental decoding with the key/value cache equals the
full pass, beam search with the cache equals beam search that recomputes the
prefix, padding invariance, attention maps, tying, autocast, ensembles with
RNNs, and its config checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
import torch
from torch import Tensor

from nmt.config import (
    ConfigError,
    DecodingConfig,
    DecodingStrategy,
    LuongConfig,
    NormPlace,
    TransformerConfig,
)
from nmt.decoding.search import search
from nmt.models.encoder import EncoderOutput
from nmt.models.ensemble import Ensemble
from nmt.models.registry import VocabSizes, build_model
from nmt.models.seq2seq import Seq2Seq

SIZES = VocabSizes(src=17, tgt=13, src_pad=0, tgt_pad=0)
BOS, EOS = 1, 2

# the wirings the cache must agree with: norm place, which layer's attention
# is returned, and one layer only
VARIANTS = [
    {},
    {"norm": NormPlace.post},
    {"attention_layer": 0},
    {"decoder_layers": 1, "encoder_layers": 1},
]


def variant_id(options: dict[str, Any]) -> str:
    return "-".join(f"{k}={getattr(v, 'value', v)}" for k, v in options.items()) or "default"


def tiny_transformer(sizes: VocabSizes = SIZES, **options: Any) -> Seq2Seq:
    torch.manual_seed(0)
    base: dict[str, Any] = {
        "d_model": 16,
        "num_heads": 4,
        "ffn_dim": 32,
        "encoder_layers": 2,
        "decoder_layers": 2,
        "dropout": 0.1,
    }
    return build_model(TransformerConfig(**(base | options)), sizes)


def padded_batch() -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """src (4, 7), src_lengths, tgt_in (4, 6) starting with <bos>, tgt lengths."""
    gen = torch.Generator().manual_seed(0)
    src_lengths = torch.tensor([5, 2, 7, 1])
    tgt_lengths = torch.tensor([3, 6, 2, 4])
    src = torch.randint(3, SIZES.src, (4, 7), generator=gen)
    src = src.masked_fill(torch.arange(7)[None] >= src_lengths[:, None], SIZES.src_pad)
    tgt = torch.randint(3, SIZES.tgt, (4, 6), generator=gen)
    tgt[:, 0] = BOS
    tgt = tgt.masked_fill(torch.arange(6)[None] >= tgt_lengths[:, None], SIZES.tgt_pad)
    return src, src_lengths, tgt, tgt_lengths


def step_loop(model: Seq2Seq, src: Tensor, lengths: Tensor, tgt_in: Tensor):
    """Teacher-forced decode_step loop: logits (B, T, V) and each step's attention."""
    enc = model.encode(src, lengths)
    state = model.init_state(enc, tgt_in.size(1))
    logits, attention = [], []
    for t in range(tgt_in.size(1)):
        step_logits, state, attn = model.decode_step(tgt_in[:, t], state, enc)
        logits.append(step_logits)
        attention.append(attn)
    return torch.stack(logits, dim=1), attention


@pytest.mark.parametrize("options", VARIANTS, ids=variant_id)
def test_incremental_decoding_equals_the_full_pass(options: dict[str, Any]) -> None:
    model = tiny_transformer(**options).eval()
    src, lengths, tgt_in, _ = padded_batch()
    with torch.no_grad():
        full = model(src, lengths, tgt_in)
        steps, attention = step_loop(model, src, lengths, tgt_in)
    for t in range(tgt_in.size(1)):  # every step, fp32, within 1e-5
        torch.testing.assert_close(steps[:, t], full[:, t], atol=1e-5, rtol=0)
    mask = model.encode(src, lengths).mask
    for attn in attention:
        assert attn is not None and attn.shape == (4, 7)
        torch.testing.assert_close(attn.sum(-1), torch.ones(4))
        assert torch.all(attn[~mask] == 0.0)


def test_the_attention_map_is_the_chosen_layers() -> None:
    src, lengths, tgt_in, _ = padded_batch()
    maps = []
    for layer in (0, 1):
        with torch.no_grad():
            maps.append(
                step_loop(tiny_transformer(attention_layer=layer).eval(), src, lengths, tgt_in)[1]
            )
    assert not torch.allclose(maps[0][2], maps[1][2])
    with torch.no_grad():
        last = step_loop(tiny_transformer(attention_layer=-1).eval(), src, lengths, tgt_in)[1]
    assert torch.equal(last[2], maps[1][2])


@pytest.mark.parametrize("options", VARIANTS[:2], ids=variant_id)
def test_padding_changes_nothing(options: dict[str, Any]) -> None:
    model = tiny_transformer(**options).eval()
    src, lengths, tgt_in, tgt_lengths = padded_batch()
    with torch.no_grad():
        batch = model(src, lengths, tgt_in)
        batch_steps, _ = step_loop(model, src, lengths, tgt_in)
        for i in range(4):
            s, t = int(lengths[i]), int(tgt_lengths[i])
            one = (src[i : i + 1, :s], lengths[i : i + 1], tgt_in[i : i + 1, :t])
            torch.testing.assert_close(model(*one)[0], batch[i, :t], atol=1e-5, rtol=1e-5)
            alone, _ = step_loop(model, *one)
            torch.testing.assert_close(alone[0], batch_steps[i, :t], atol=1e-5, rtol=1e-5)


@dataclass
class Prefix:
    """Recompute's state: the tokens so far (B, t)."""

    tokens: Tensor


class Recompute(torch.nn.Module):
    """The same model, decoding without a cache: every step runs the full pass
    over the whole prefix and keeps the last position's logits."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model
        self.src_pad, self.tgt_pad = model.src_pad, model.tgt_pad

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        return self.model.encode(src, src_lengths)

    def init_state(self, enc: EncoderOutput, max_steps: int = 0) -> Prefix:
        return Prefix(torch.empty(enc.mask.size(0), 0, dtype=torch.long))

    def reorder_state(self, state: Prefix, rows: Tensor) -> Prefix:
        return Prefix(state.tokens.index_select(0, rows))

    def decode_step(self, y: Tensor, state: Prefix, enc: EncoderOutput):
        tokens = torch.cat([state.tokens, y[:, None]], dim=1)
        decoder = self.model.decoder
        features = decoder.forward_sequence(tokens, decoder.init_state(enc), enc)
        return decoder.project(features[:, -1]), Prefix(tokens), None


@pytest.mark.parametrize(
    "decoding",
    [
        DecodingConfig(max_len=9, max_len_ratio=None),
        DecodingConfig(
            strategy=DecodingStrategy.beam, beam_size=4, n_best=3, length_penalty=0.6, max_len=9
        ),
        DecodingConfig(
            strategy=DecodingStrategy.beam, beam_size=3, n_best=3, max_len_ratio=1.0, min_len=1
        ),
    ],
    ids=["greedy", "beam-4-nbest-3", "beam-3-min_len-ratio"],
)
def test_search_with_the_cache_equals_search_that_recomputes_the_prefix(
    decoding: DecodingConfig,
) -> None:
    model = tiny_transformer().eval()
    with torch.no_grad():  # an untrained model that ends some hypotheses early
        model.decoder.output.bias[EOS] += 2.0
    src, lengths, _, _ = padded_batch()
    common = {"bos_idx": BOS, "eos_idx": EOS, "decoding": decoding}
    cached = search(model, src, lengths, **common)
    recomputed = search(Recompute(model), src, lengths, **common)
    assert [[h.ids for h in hyps] for hyps in cached] == [
        [h.ids for h in hyps] for hyps in recomputed
    ]
    assert len({len(h.ids) for hyps in cached for h in hyps}) > 1  # ended at different steps
    for mine, theirs in zip(cached, recomputed, strict=True):
        for a, b in zip(mine, theirs, strict=True):
            assert a.score == pytest.approx(b.score, abs=1e-5)


def test_a_state_made_for_n_steps_refuses_step_n_plus_1() -> None:
    model = tiny_transformer().eval()
    src, lengths, _, _ = padded_batch()
    with torch.no_grad():
        enc = model.encode(src, lengths)
        state = model.init_state(enc, 1)
        _, state, _ = model.decode_step(torch.full((4,), BOS), state, enc)
        with pytest.raises(ValueError, match="max_steps"):
            model.decode_step(torch.full((4,), BOS), state, enc)


def test_gradients_reach_every_parameter_and_scheduled_sampling_trains() -> None:
    model = tiny_transformer()
    src, lengths, tgt_in, tgt_lengths = padded_batch()
    for ratio in (1.0, 0.5):
        model.zero_grad()
        packed, index = model.forward_packed(src, lengths, tgt_in, teacher_forcing=ratio)
        assert index.numel() == int(tgt_lengths.sum())
        packed.log_softmax(-1).mean().backward()
        for name, param in model.named_parameters():
            assert param.grad is not None and torch.isfinite(param.grad).all(), name


def test_forward_packed_equals_forward_on_real_positions() -> None:
    model = tiny_transformer().eval()
    src, lengths, tgt_in, _ = padded_batch()
    with torch.no_grad():
        full = model(src, lengths, tgt_in)
        packed, index = model.forward_packed(src, lengths, tgt_in)
    torch.testing.assert_close(packed, full.reshape(-1, full.size(-1))[index], atol=1e-5, rtol=1e-5)


def test_tying_two_and_three_ways() -> None:
    untied = tiny_transformer(tie_embeddings=False)
    assert untied.decoder.output.weight is not untied.decoder.embedding.weight
    tied = tiny_transformer(tie_embeddings=True)
    assert tied.decoder.output.weight is tied.decoder.embedding.weight
    joint = VocabSizes(src=13, tgt=13, src_pad=0, tgt_pad=0, joint=True)
    shared = tiny_transformer(joint, tie_embeddings="all")
    assert shared.encoder.embedding.weight is shared.decoder.embedding.weight
    assert shared.decoder.output.weight is shared.decoder.embedding.weight
    with pytest.raises(ConfigError, match="joint"):
        tiny_transformer(tie_embeddings="all")  # two vocabularies


def test_bf16_autocast_trains_and_decodes() -> None:
    model = tiny_transformer()
    src, lengths, tgt_in, _ = padded_batch()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = model(src, lengths, tgt_in)
        logits.float().log_softmax(-1).mean().backward()
        model.eval()
        found = search(
            model,
            src,
            lengths,
            bos_idx=BOS,
            eos_idx=EOS,
            decoding=DecodingConfig(strategy=DecodingStrategy.beam, beam_size=3, max_len=6),
            keep_attention=True,
        )
    assert torch.isfinite(logits).all()
    assert all(h[0].attention is not None for h in found)


def test_an_ensemble_of_a_transformer_and_an_rnn_decodes() -> None:
    torch.manual_seed(0)
    rnn = build_model(LuongConfig(emb_dim=8, hidden_dim=8, num_layers=1), SIZES).eval()
    pair = Ensemble([tiny_transformer().eval(), rnn])
    src, lengths, _, _ = padded_batch()
    beam = DecodingConfig(strategy=DecodingStrategy.beam, beam_size=3, n_best=2, max_len=6)
    found = search(pair, src, lengths, bos_idx=BOS, eos_idx=EOS, decoding=beam, keep_attention=True)
    assert all(len(hyps) == 2 and hyps[0].attention is not None for hyps in found)


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"d_model": 10, "num_heads": 4}, "model.num_heads"),
        ({"attention_layer": 3}, "model.attention_layer"),
        ({"encoder_layers": 0}, "model.encoder_layers"),
        ({"attention_dropout": 1.0}, "model.attention_dropout"),
    ],
)
def test_bad_settings_name_the_key(options: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        TransformerConfig(**options)
