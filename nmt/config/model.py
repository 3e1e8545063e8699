"""Schema of the ``model`` group: the options every architecture shares
(:class:`ModelConfig`), those every RNN shares (:class:`RNNConfig`) and one
subclass per architecture, found by its ``arch`` name in MODEL_CONFIGS."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from omegaconf import MISSING

from nmt.config.checks import check_finite
from nmt.config.errors import ConfigError


class CellType(str, Enum):
    rnn = "rnn"
    gru = "gru"
    lstm = "lstm"


class ChoContext(str, Enum):
    """Where Cho et al. 2014's summary vector c reaches the decoder."""

    init = "init"  # only through the initial state h'_0 = tanh(V' c)
    step = "step"  # also as an input of every recurrent step
    step_output = "step_output"  # also in the output layer, beside y_{t-1} (the paper)


class ChoSummary(str, Enum):
    """How Cho et al. 2014's decoder gets its summary c and its start state."""

    projected = "projected"  # c = tanh(V h_N), start tanh(V' c) (the paper, appendix A)
    final = "final"  # c = h_N and start h_N per layer, bridged as Sutskever's (the tutorial)


class Readout(str, Enum):
    """What sits between the decoder's [state; context; embedding] and the vocabulary."""

    deep = "deep"  # a deep-output layer tanh/maxout(W x) of hidden_dim units (the papers)
    direct = "direct"  # none: the vocabulary layer reads x itself (the seed tutorials)


class DecoderInit(str, Enum):
    """Which encoder summary starts an attention decoder (through tanh(W .))."""

    backward = "backward"  # backward RNN's state at the first word (Bahdanau et al. 2015)
    # final state of the top layer, both directions side by side: [forward at the
    # last word; backward at the first] (the seed tutorial)
    final = "final"
    mean = "mean"  # mean of the top layer's outputs over the real source positions


class AttentionScore(str, Enum):
    """Luong et al. 2015 (sec. 3.1) alignment scores."""

    dot = "dot"
    general = "general"
    concat = "concat"


class InitKind(str, Enum):
    default = "default"  # PyTorch's own initialisation
    uniform = "uniform"  # U(-init_range, init_range), Sutskever et al. 2014
    xavier = "xavier"  # Glorot & Bengio 2010 on matrices, zeros on biases


TIE_ALL = "all"


def _tie_choice(value: Any) -> bool | str:
    """``model.tie_embeddings`` as False, True or "all" (strings from YAML or
    the command line accepted case-insensitively)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    choices: dict[str, bool | str] = {"false": False, "true": True, TIE_ALL: TIE_ALL}
    if text not in choices:
        raise ConfigError(f"model.tie_embeddings={value!r}: choose false, true or all")
    return choices[text]


@dataclass
class ModelConfig:
    """Options every architecture shares; ``arch`` picks the registered builder."""

    arch: str = MISSING
    dropout: float = 0.3
    # false; true: the decoder's input embedding is its output layer (Press &
    # Wolf 2017); all: the source embedding too (needs one joint vocabulary).
    # Typed Any because OmegaConf has no bool|str union: values are checked below.
    tie_embeddings: Any = False
    init: InitKind = InitKind.default
    init_range: float = 0.08

    def __post_init__(self) -> None:
        check_finite(self, "model.")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"model.dropout={self.dropout} must be in [0, 1)")
        if self.init_range <= 0:
            raise ConfigError(f"model.init_range={self.init_range} must be > 0")
        self.tie_embeddings = _tie_choice(self.tie_embeddings)


@dataclass
class RNNConfig(ModelConfig):
    """Options every recurrent encoder-decoder shares."""

    cell: CellType = CellType.lstm
    # null: follows hidden_dim when the embeddings are tied (they must match),
    # else 256; a value given is kept, and a tie that contradicts it is an error
    emb_dim: int | None = None
    hidden_dim: int = 512  # the decoder's, and each encoder direction's
    num_layers: int = 2
    bidirectional: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.emb_dim is None:
            self.emb_dim = self.hidden_dim if self.tie_embeddings else 256
        for key in ("emb_dim", "hidden_dim", "num_layers"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1")
        # every decoder's output layer reads hidden_dim features, so the
        # embedding it shares its weights with must have that size
        if self.tie_embeddings and self.emb_dim != self.hidden_dim:
            raise ConfigError(
                f"model.tie_embeddings={str(self.tie_embeddings).lower()} (arch {self.arch}) "
                "needs model.emb_dim == "
                f"model.hidden_dim (got {self.emb_dim} and {self.hidden_dim}): change one of "
                "them or set model.tie_embeddings=false"
            )


def embedding_dim(cfg: RNNConfig) -> int:
    """``model.emb_dim`` once the config's checks have resolved a null."""
    if cfg.emb_dim is None:
        raise ConfigError("model.emb_dim is null: build the config through its dataclass")
    return cfg.emb_dim


def check_readout(cfg: RNNConfig, readout: Readout, maxout: bool) -> None:
    """The readout options Cho's and Bahdanau's decoders share."""
    if readout == Readout.direct and maxout:
        raise ConfigError(
            "model.maxout=true needs the deep-output layer: set model.readout=deep "
            "or model.maxout=false"
        )
    if readout == Readout.direct and cfg.tie_embeddings:
        raise ConfigError(
            "model.readout=direct feeds [state; context; embedding] to the output layer, "
            "which cannot share the embedding matrix: set model.readout=deep or "
            "model.tie_embeddings=false"
        )


@dataclass
class SutskeverConfig(RNNConfig):
    """Sutskever et al. 2014: the decoder starts from the encoder's final state."""

    arch: str = "sutskever"


@dataclass
class ChoConfig(RNNConfig):
    """Cho et al. 2014 RNN Encoder-Decoder: a fixed summary c of the source starts
    the decoder and, by ``context``, also feeds every step and the output layer."""

    arch: str = "cho"
    cell: CellType = CellType.gru
    num_layers: int = 1
    context: ChoContext = ChoContext.step_output
    maxout: bool = False  # deep output: maxout (pool 2) instead of tanh; step_output only
    readout: Readout = Readout.deep  # step_output only
    summary: ChoSummary = ChoSummary.projected

    def __post_init__(self) -> None:
        super().__post_init__()
        check_readout(self, self.readout, self.maxout)
        if self.readout == Readout.direct and self.context != ChoContext.step_output:
            raise ConfigError(
                "model.readout=direct reads c in the output layer: set "
                "model.context=step_output or model.readout=deep"
            )
        if self.maxout and self.context != ChoContext.step_output:
            raise ConfigError(
                "model.maxout=true needs the deep output layer: set "
                "model.context=step_output or model.maxout=false"
            )


@dataclass
class BahdanauConfig(RNNConfig):
    """Bahdanau et al. 2015: bidirectional encoder, additive attention read from the
    previous decoder state, deep output over [state; context; embedding]."""

    arch: str = "bahdanau"
    cell: CellType = CellType.gru
    num_layers: int = 1
    bidirectional: bool = True
    decoder_init: DecoderInit = DecoderInit.backward
    maxout: bool = False  # deep output: maxout (pool 2) instead of tanh
    readout: Readout = Readout.deep

    def __post_init__(self) -> None:
        super().__post_init__()
        check_readout(self, self.readout, self.maxout)
        if self.decoder_init == DecoderInit.backward and not self.bidirectional:
            raise ConfigError(
                "model.decoder_init=backward reads the backward encoder RNN: set "
                "model.bidirectional=true, or model.decoder_init=final|mean"
            )


@dataclass
class LuongConfig(RNNConfig):
    """Luong et al. 2015 global attention: score(h_t, h_s), attentional state
    h~_t = tanh(W_c[c_t; h_t]) and optional input feeding of h~_{t-1}."""

    arch: str = "luong"
    score: AttentionScore = AttentionScore.general
    input_feeding: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.score == AttentionScore.dot and self.bidirectional:
            raise ConfigError(
                "model.score=dot needs encoder states of the decoder's size "
                f"model.hidden_dim={self.hidden_dim}, but model.bidirectional=true makes "
                f"them {2 * self.hidden_dim}: set model.bidirectional=false or "
                "model.score=general|concat"
            )


class NormPlace(str, Enum):
    """Where a Transformer layer normalises its sublayers."""

    pre = "pre"  # x + f(LN(x)), a final LN on top (Wang et al. 2019, Xiong et al. 2020)
    post = "post"  # LN(x + f(x)), as Vaswani et al. 2017


@dataclass
class TransformerConfig(ModelConfig):
    """Vaswani et al. 2017: self-attention encoder and decoder with sinusoidal
    positions; ``tie_embeddings`` ties the target embedding and the output
    layer (true) and the source embedding too (all, with a joint vocabulary)."""

    arch: str = "transformer"
    d_model: int = 256
    num_heads: int = 4
    ffn_dim: int = 1024
    encoder_layers: int = 3
    decoder_layers: int = 3
    dropout: float = 0.1
    attention_dropout: float = 0.0  # on the attention weights
    norm: NormPlace = NormPlace.pre
    # the decoder layer whose cross-attention (heads averaged) is the model's
    # attention map (plots, replace_unk, the page's heatmap); -1 = the last
    attention_layer: int = -1
    tie_embeddings: Any = True
    init: InitKind = InitKind.xavier

    def __post_init__(self) -> None:
        super().__post_init__()
        for key in ("d_model", "num_heads", "ffn_dim", "encoder_layers", "decoder_layers"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1")
        if self.d_model % self.num_heads:
            raise ConfigError(
                f"model.d_model={self.d_model} must be a multiple of "
                f"model.num_heads={self.num_heads}"
            )
        if not 0.0 <= self.attention_dropout < 1.0:
            raise ConfigError(f"model.attention_dropout={self.attention_dropout} must be in [0, 1)")
        if not -self.decoder_layers <= self.attention_layer < self.decoder_layers:
            raise ConfigError(
                f"model.attention_layer={self.attention_layer} names no layer of "
                f"model.decoder_layers={self.decoder_layers} (0 .. {self.decoder_layers - 1}, "
                "or -1 for the last)"
            )


# arch name -> its config dataclass; the model registry checks it has a builder
# for each of these, and register_configs stores each as the schema of its YAML.
MODEL_CONFIGS: dict[str, type[ModelConfig]] = {
    "sutskever": SutskeverConfig,
    "cho": ChoConfig,
    "bahdanau": BahdanauConfig,
    "luong": LuongConfig,
    "transformer": TransformerConfig,
}
