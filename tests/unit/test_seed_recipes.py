"""The ``<family>_seed`` recipes build the seed tutorials' models: the same
parameter count as the tutorial's model with the same vocabularies (counted
layer by layer here, and by building ``scripts/tutorial_reference.py``), and
the tutorials' wiring of the start state and the output layer."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import torch

from nmt.config import (
    BahdanauConfig,
    ChoConfig,
    ChoContext,
    ConfigError,
    ModelConfig,
    Readout,
    TrainConfig,
    register_configs,
    to_dataclass,
)
from nmt.models.registry import VocabSizes, build_model

# Multi30k de->en with min_freq 2, as the tutorials print them
SIZES = VocabSizes(src=7853, tgt=5893, src_pad=1, tgt_pad=1)
E, H = 256, 512


def linear(i: int, o: int, bias: bool = True) -> int:
    return i * o + (o if bias else 0)


def gru(i: int, h: int) -> int:
    return 3 * h * (i + h) + 6 * h


def lstm(i: int, h: int) -> int:
    return 4 * h * (i + h) + 8 * h


def embeddings() -> int:
    return SIZES.src * E + SIZES.tgt * E


# The tutorials' models, layer by layer (E = 256, H = 512).
TUTORIAL_COUNTS: dict[str, int] = {
    # 2-layer LSTM encoder and decoder, Linear(H, V)
    "sutskever_seed": embeddings() + 2 * (lstm(E, H) + lstm(H, H)) + linear(H, SIZES.tgt),
    # GRU encoder; GRU decoder over [E y; c]; Linear([E y; s; c], V)
    "cho_seed": embeddings() + gru(E, H) + gru(E + H, H) + linear(E + 2 * H, SIZES.tgt),
    # bidirectional GRU; fc [h->_N; h<-_1] -> s_0; attention Linear([s; h_j], H) and
    # v; GRU decoder over [E y; c]; Linear([s; c; E y], V)
    "bahdanau_seed": embeddings()
    + 2 * gru(E, H)
    + linear(2 * H, H)
    + linear(3 * H, H)
    + H
    + gru(E + 2 * H, H)
    + linear(3 * H + E, SIZES.tgt),
    # no tutorial of its own: tutorial_reference's 2-layer LSTM, general score,
    # input feeding, W_c without bias, Linear(H, V)
    "luong_seed": embeddings()
    + lstm(E, H)
    + lstm(E + H, H)
    + 2 * lstm(H, H)
    + linear(H, H, bias=False)
    + linear(2 * H, H, bias=False)
    + linear(H, SIZES.tgt),
}


@pytest.fixture(scope="module")
def seed_model() -> Iterator[Callable[..., ModelConfig]]:
    from hydra import compose, initialize_config_module
    from hydra.core.global_hydra import GlobalHydra

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_module(config_module="nmt.configs", version_base=None):

        def make(recipe: str, *overrides: str) -> ModelConfig:
            cfg = compose(config_name="train", overrides=[f"experiment={recipe}", *overrides])
            return to_dataclass(cfg, TrainConfig).model

        yield make


def count(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("recipe", sorted(TUTORIAL_COUNTS))
def test_seed_recipe_has_its_tutorials_parameter_count(
    recipe: str, seed_model: Callable[..., ModelConfig]
) -> None:
    from tutorial_reference import build_reference

    cfg = seed_model(recipe)
    ours = count(build_model(cfg, SIZES))
    assert ours == TUTORIAL_COUNTS[recipe]
    assert count(build_reference(cfg, SIZES)) == ours


def test_bahdanau_seed_is_the_tutorials_attention_model(
    seed_model: Callable[..., ModelConfig],
) -> None:
    torch.manual_seed(0)
    cfg = seed_model("bahdanau_seed", "model.emb_dim=6", "model.hidden_dim=5")
    model = build_model(cfg, VocabSizes(src=11, tgt=9, src_pad=1, tgt_pad=1)).eval()
    decoder = model.decoder
    assert decoder.output.in_features == 5 + 10 + 6  # [s; c; E y] straight to V
    assert decoder.readout is None  # no deep-output layer
    src = torch.tensor([[4, 5, 6, 7], [8, 9, 1, 1]])
    lengths = torch.tensor([4, 2])
    with torch.no_grad():
        enc = model.encode(src, lengths)
        s0 = model.init_state(enc).hidden[0]  # (B, H)
        forward_last = enc.outputs[torch.arange(2), lengths - 1, :5]
        backward_first = enc.outputs[:, 0, 5:]
        summary = torch.cat([forward_last, backward_first], -1)
        expected = torch.tanh(decoder.init_proj(summary))
    torch.testing.assert_close(s0, expected)


def test_cho_seed_starts_from_the_encoders_final_state(
    seed_model: Callable[..., ModelConfig],
) -> None:
    torch.manual_seed(0)
    cfg = seed_model("cho_seed", "model.emb_dim=6", "model.hidden_dim=5")
    model = build_model(cfg, VocabSizes(src=11, tgt=9, src_pad=1, tgt_pad=1)).eval()
    assert model.decoder.output.in_features == 5 + 6 + 5  # [s; E y; c] straight to V
    src = torch.tensor([[4, 5, 6, 7], [8, 9, 1, 1]])
    with torch.no_grad():
        enc = model.encode(src, torch.tensor([4, 2]))
        state = model.init_state(enc)
    assert enc.hidden is not None
    torch.testing.assert_close(state.hidden, enc.hidden)  # s_0 = h_N
    torch.testing.assert_close(state.summary[0], enc.hidden[-1])  # c = h_N


@pytest.mark.parametrize(
    ("make", "keys"),
    [
        (lambda: BahdanauConfig(readout=Readout.direct, maxout=True), ["maxout", "readout"]),
        (
            lambda: BahdanauConfig(readout=Readout.direct, tie_embeddings=True, emb_dim=512),
            ["readout", "tie_embeddings"],
        ),
        (
            lambda: ChoConfig(readout=Readout.direct, context=ChoContext.init),
            ["readout", "context"],
        ),
    ],
    ids=["direct-maxout", "direct-tied", "cho-direct-without-c-in-the-output"],
)
def test_bad_readout_combinations_name_the_keys(
    make: Callable[[], ModelConfig], keys: list[str]
) -> None:
    with pytest.raises(ConfigError) as err:
        make()
    for key in keys:
        assert f"model.{key}" in str(err.value)
