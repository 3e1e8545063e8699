"""Every registered architecture and its variants: shapes, gradients, padding
invariance, forward_sequence == the step loop, state layout, config checks,
and the model YAML files."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from enum import Enum
from pathlib import Path
from typing import Any

import pytest
import torch
from omegaconf import DictConfig
from omegaconf.errors import OmegaConfBaseException

import nmt.configs
from nmt.config import (
    MODEL_CONFIGS,
    AttentionScore,
    BahdanauConfig,
    CellType,
    ChoConfig,
    ChoContext,
    ChoSummary,
    ConfigError,
    DecoderInit,
    InitKind,
    LuongConfig,
    ModelConfig,
    Readout,
    RNNConfig,
    TrainConfig,
    register_configs,
    to_dataclass,
)
from nmt.models.encoder import EncoderOutput
from nmt.models.registry import VocabSizes, build_model, registered_archs
from nmt.models.seq2seq import Seq2Seq

SIZES = VocabSizes(src=17, tgt=13, src_pad=0, tgt_pad=0)
BOS = 1
ATTENTION_ARCHS = {"bahdanau", "luong"}
# the recurrent architectures (the Transformer has its own tests: test_transformer.py)
RNN_ARCHS = sorted(arch for arch, cls in MODEL_CONFIGS.items() if issubclass(cls, RNNConfig))
MODEL_YAML_DIR = Path(nmt.configs.__file__).parent / "model"

# (arch, options beyond the tiny defaults): the wirings each arch offers.
VARIANTS: list[tuple[str, dict[str, Any]]] = [
    ("sutskever", {}),
    ("sutskever", {"bidirectional": True}),
    ("cho", {"context": ChoContext.init}),
    ("cho", {"context": ChoContext.step}),
    ("cho", {"context": ChoContext.step_output, "bidirectional": True}),
    ("cho", {"maxout": True, "tie_embeddings": True, "emb_dim": 12}),
    ("cho", {"readout": Readout.direct, "summary": ChoSummary.final}),
    ("cho", {"summary": ChoSummary.final, "bidirectional": True, "context": ChoContext.step}),
    ("bahdanau", {"decoder_init": DecoderInit.backward}),
    ("bahdanau", {"decoder_init": DecoderInit.final, "maxout": True}),
    ("bahdanau", {"decoder_init": DecoderInit.mean, "bidirectional": False}),
    ("bahdanau", {"decoder_init": DecoderInit.final, "readout": Readout.direct}),
    ("luong", {"score": AttentionScore.dot}),
    ("luong", {"score": AttentionScore.general, "bidirectional": True}),
    ("luong", {"score": AttentionScore.concat, "bidirectional": True}),
    ("luong", {"score": AttentionScore.dot, "input_feeding": False}),
    ("luong", {"score": AttentionScore.general, "input_feeding": False}),
    ("luong", {"score": AttentionScore.concat, "input_feeding": False, "bidirectional": True}),
    ("luong", {"tie_embeddings": True, "emb_dim": 12}),
]


def variant_id(variant: tuple[str, dict[str, Any]]) -> str:
    arch, extra = variant
    parts = [f"{k}={v.value if isinstance(v, Enum) else v}" for k, v in extra.items()]
    return "-".join([arch, *parts])


def tiny_config(arch: str, cell: CellType = CellType.gru, **extra: Any) -> RNNConfig:
    options: dict[str, Any] = {
        "cell": cell,
        "emb_dim": 8,
        "hidden_dim": 12,
        "num_layers": 2,
        "dropout": 0.1,
        "init": InitKind.xavier,
    }
    options.update(extra)
    cfg = MODEL_CONFIGS[arch](**options)
    assert isinstance(cfg, RNNConfig)
    return cfg


def tiny_model(arch: str, cell: CellType = CellType.gru, **extra: Any) -> Seq2Seq:
    torch.manual_seed(0)
    return build_model(tiny_config(arch, cell, **extra), SIZES)


def padded_batch() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
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


def step_loop(
    model: Seq2Seq, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor
) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    """Teacher-forced decode_step loop: logits (B, T, V) and each step's attention."""
    enc = model.encode(src, src_lengths)
    state = model.init_state(enc)
    logits, attention = [], []
    for t in range(tgt_in.size(1)):
        step_logits, state, attn = model.decode_step(tgt_in[:, t], state, enc)
        logits.append(step_logits)
        attention.append(attn)
    return torch.stack(logits, dim=1), attention


def select_rows(enc: EncoderOutput, index: torch.Tensor) -> EncoderOutput:
    return EncoderOutput(
        outputs=enc.outputs.index_select(0, index),
        mask=enc.mask.index_select(0, index),
        hidden=enc.hidden.index_select(1, index),
        cell=None if enc.cell is None else enc.cell.index_select(1, index),
    )


# -- every arch x cell --------------------------------------------------------------


@pytest.mark.parametrize("cell", list(CellType), ids=[c.value for c in CellType])
@pytest.mark.parametrize("arch", RNN_ARCHS)
def test_forward_backward_every_arch_and_cell(arch: str, cell: CellType) -> None:
    model = tiny_model(arch, cell)
    src, src_lengths, tgt_in, _ = padded_batch()
    logits = model(src, src_lengths, tgt_in)
    assert logits.shape == (4, 6, SIZES.tgt)
    assert torch.isfinite(logits).all()
    logits.log_softmax(-1).mean().backward()
    for name, param in model.named_parameters():
        assert param.grad is not None, f"{name} got no gradient"
        assert torch.isfinite(param.grad).all(), name
    sampled = model(src, src_lengths, tgt_in, teacher_forcing=0.5)
    assert sampled.shape == (4, 6, SIZES.tgt) and torch.isfinite(sampled).all()


@pytest.mark.parametrize("arch", RNN_ARCHS)
def test_decode_step_shapes_and_attention(arch: str) -> None:
    model = tiny_model(arch).eval()
    src, src_lengths, tgt_in, _ = padded_batch()
    enc = model.encode(src, src_lengths)
    logits, state, attn = model.decode_step(tgt_in[:, 0], model.init_state(enc), enc)
    assert logits.shape == (4, SIZES.tgt)
    if arch in ATTENTION_ARCHS:
        assert attn is not None and attn.shape == (4, 7)
        torch.testing.assert_close(attn.sum(-1), torch.ones(4))
        assert torch.all(attn[~enc.mask] == 0.0)
    else:
        assert attn is None


# -- variants ---------------------------------------------------------------------


@pytest.mark.parametrize("cell", [CellType.lstm, CellType.rnn], ids=["lstm", "rnn"])
@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_variant_forward_backward(variant: tuple[str, dict[str, Any]], cell: CellType) -> None:
    arch, extra = variant
    model = tiny_model(arch, cell, **extra)
    src, src_lengths, tgt_in, _ = padded_batch()
    logits = model(src, src_lengths, tgt_in)
    assert logits.shape == (4, 6, SIZES.tgt)
    logits.log_softmax(-1).mean().backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_padding_changes_nothing(variant: tuple[str, dict[str, Any]]) -> None:
    """Each sentence alone gives the logits it gets inside a padded batch, in
    the teacher-forced forward and in the step-by-step decode."""
    arch, extra = variant
    model = tiny_model(arch, CellType.lstm, **extra).eval()
    src, src_lengths, tgt_in, tgt_lengths = padded_batch()
    with torch.no_grad():
        batch_logits = model(src, src_lengths, tgt_in)
        batch_steps, batch_attn = step_loop(model, src, src_lengths, tgt_in)
        for i in range(src.size(0)):
            s, t = int(src_lengths[i]), int(tgt_lengths[i])
            one_src, one_len, one_tgt = (
                src[i : i + 1, :s],
                src_lengths[i : i + 1],
                tgt_in[i : i + 1, :t],
            )
            alone = model(one_src, one_len, one_tgt)
            torch.testing.assert_close(alone[0], batch_logits[i, :t], atol=1e-5, rtol=1e-5)
            alone_steps, alone_attn = step_loop(model, one_src, one_len, one_tgt)
            torch.testing.assert_close(alone_steps[0], batch_steps[i, :t], atol=1e-5, rtol=1e-5)
            for step in range(t):
                a_alone, a_batch = alone_attn[step], batch_attn[step]
                assert (a_alone is None) == (a_batch is None)
                if a_alone is not None and a_batch is not None:
                    torch.testing.assert_close(a_alone[0], a_batch[i, :s], atol=1e-5, rtol=1e-5)
                    assert torch.all(a_batch[i, s:] == 0.0)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_forward_sequence_equals_step_loop(variant: tuple[str, dict[str, Any]]) -> None:
    arch, extra = variant
    model = tiny_model(arch, CellType.gru, **extra).eval()
    src, src_lengths, tgt_in, _ = padded_batch()
    with torch.no_grad():
        steps, _ = step_loop(model, src, src_lengths, tgt_in)
        enc = model.encode(src, src_lengths)
        features = model.decoder.forward_sequence(tgt_in, model.init_state(enc), enc)
        torch.testing.assert_close(model.decoder.project(features), steps, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(model(src, src_lengths, tgt_in), steps, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("ratio", [1.0, 0.0])
@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_forward_packed_equals_forward_on_real_positions(
    variant: tuple[str, dict[str, Any]], ratio: float
) -> None:
    """forward_packed skips padded target positions and nothing else: its logits
    are forward's at the real positions, whatever the decoder needs (ratio 0:
    every step feeds back its own argmax)."""
    arch, extra = variant
    model = tiny_model(arch, CellType.lstm, **extra).eval()
    src, src_lengths, tgt_in, tgt_lengths = padded_batch()
    with torch.no_grad():
        full = model(src, src_lengths, tgt_in, teacher_forcing=ratio)
        packed, index = model.forward_packed(src, src_lengths, tgt_in, teacher_forcing=ratio)
    assert index.numel() == int(tgt_lengths.sum()) == len(set(index.tolist()))
    assert torch.all(tgt_in.reshape(-1)[index] != SIZES.tgt_pad)
    torch.testing.assert_close(packed, full.reshape(-1, full.size(-1))[index], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("variant", VARIANTS, ids=variant_id)
def test_state_rows_can_be_reordered(variant: tuple[str, dict[str, Any]]) -> None:
    """Beam search reorders state rows: every state tensor has the batch at dim 1,
    and a permuted state (with a permuted encoding) gives permuted logits."""
    arch, extra = variant
    model = tiny_model(arch, CellType.lstm, **extra).eval()
    src, src_lengths, tgt_in, _ = padded_batch()
    order = torch.tensor([2, 0, 3, 1])
    with torch.no_grad():
        enc = model.encode(src, src_lengths)
        _, state, _ = model.decode_step(tgt_in[:, 0], model.init_state(enc), enc)
        tensors = [v for v in vars(state).values() if isinstance(v, torch.Tensor)]
        assert tensors and all(t.size(1) == src.size(0) for t in tensors)
        logits, _, attn = model.decode_step(tgt_in[:, 1], state, enc)
        moved = model.reorder_state(state, order)
        moved_logits, _, moved_attn = model.decode_step(
            tgt_in[order, 1], moved, select_rows(enc, order)
        )
    torch.testing.assert_close(moved_logits, logits[order], atol=1e-6, rtol=1e-6)
    if attn is not None and moved_attn is not None:
        torch.testing.assert_close(moved_attn, attn[order], atol=1e-6, rtol=1e-6)


# Decoder parameter names in the order the code before the decoder base class
# registered them (LSTM, one layer, bidirectional encoder, tied embeddings).
# Checkpoints hold these names, and an optimizer's saved state follows this order.
_RNN = ["rnn.weight_ih_l0", "rnn.weight_hh_l0", "rnn.bias_ih_l0", "rnn.bias_hh_l0"]
_BRIDGES = [f"bridge_{x}.proj.{p}" for x in "hc" for p in ("weight", "bias")]
_OUTPUT = ["output.weight", "output.bias"]
DECODER_KEYS = {
    "sutskever": ["embedding.weight", *_RNN, *_BRIDGES, *_OUTPUT],
    "cho": [
        "embedding.weight",
        *["summary.weight", "summary.bias", "init_proj.weight", "init_proj.bias"],
        *_RNN,
        *["readout.linear.weight", "readout.linear.bias", *_OUTPUT],
    ],
    "bahdanau": [
        "embedding.weight",
        *["attention.query_proj.weight", "attention.key_proj.weight"],
        *["attention.key_proj.bias", "attention.energy.weight"],
        *["init_proj.weight", "init_proj.bias", *_RNN],
        *["readout.linear.weight", "readout.linear.bias", *_OUTPUT],
    ],
    "luong": [
        "embedding.weight",
        *_RNN,
        *_BRIDGES,
        *["attention.query_proj.weight", "combine.weight", *_OUTPUT],
    ],
}


@pytest.mark.parametrize("arch", RNN_ARCHS)
def test_decoder_parameter_names_and_order_are_kept(arch: str) -> None:
    options = {"num_layers": 1, "bidirectional": True, "tie_embeddings": True}
    model = tiny_model(arch, CellType.lstm, **options, emb_dim=8, hidden_dim=8)
    names = [k.removeprefix("decoder.") for k in model.state_dict() if k.startswith("decoder.")]
    assert names == DECODER_KEYS[arch]
    assert model.decoder.output.weight is model.decoder.embedding.weight
    params = [n for n, _ in model.decoder.named_parameters()]  # a tied matrix counts once
    assert params == [n for n in DECODER_KEYS[arch] if n != "output.weight"]


# -- configs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "keys"),
    [
        (
            lambda: LuongConfig(score=AttentionScore.dot, bidirectional=True),
            ["model.score", "model.bidirectional"],
        ),
        (
            lambda: BahdanauConfig(bidirectional=False),
            ["model.decoder_init", "model.bidirectional"],
        ),
        (
            lambda: ChoConfig(tie_embeddings=True, emb_dim=8, hidden_dim=16),
            ["model.tie_embeddings", "model.emb_dim", "model.hidden_dim"],
        ),
        (
            lambda: LuongConfig(tie_embeddings=True, emb_dim=8, hidden_dim=16),
            ["model.emb_dim", "model.hidden_dim"],
        ),
        (
            lambda: ChoConfig(context=ChoContext.step, maxout=True),
            ["model.maxout", "model.context"],
        ),
    ],
    ids=[
        "luong-dot-bidirectional",
        "bahdanau-backward-unidirectional",
        "cho-tied",
        "luong-tied",
        "cho-maxout-without-readout",
    ],
)
def test_bad_combinations_name_the_keys(make: Callable[[], ModelConfig], keys: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        make()
    for key in keys:
        assert key in str(err.value)


@pytest.fixture(scope="module")
def compose_train() -> Iterator[Callable[[list[str]], DictConfig]]:
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="nmt.configs", version_base=None):
        yield lambda overrides: compose(config_name="train", overrides=overrides)


def model_yaml_names() -> list[str]:
    return sorted(path.stem for path in MODEL_YAML_DIR.glob("*.yaml"))


def test_every_registered_arch_has_a_config_class_and_a_yaml() -> None:
    assert set(registered_archs()) == set(MODEL_CONFIGS)
    missing = set(registered_archs()) - set(model_yaml_names())
    assert not missing, f"no nmt/configs/model/<arch>.yaml for {sorted(missing)}"


@pytest.mark.parametrize("name", model_yaml_names())
def test_every_model_yaml_composes_and_builds(
    name: str, compose_train: Callable[[list[str]], DictConfig]
) -> None:
    cfg = to_dataclass(compose_train([f"model={name}"]), TrainConfig)
    assert isinstance(cfg.model, MODEL_CONFIGS[cfg.model.arch])
    model = build_model(cfg.model, SIZES).eval()
    src, src_lengths, tgt_in, _ = padded_batch()
    with torch.no_grad():
        assert model(src, src_lengths, tgt_in).shape == (4, 6, SIZES.tgt)


def test_bad_combination_fails_when_composed(
    compose_train: Callable[[list[str]], DictConfig],
) -> None:
    cfg = compose_train(["model=luong", "model.score=dot", "model.bidirectional=true"])
    with pytest.raises((ConfigError, OmegaConfBaseException), match=r"model\.score"):
        to_dataclass(cfg, TrainConfig)


def test_unknown_choice_fails_when_composed(
    compose_train: Callable[[list[str]], DictConfig],
) -> None:
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match=r"model\.score=cosine"):
        compose_train(["model=luong", "model.score=cosine"])
