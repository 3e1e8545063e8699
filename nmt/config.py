"""Typed schema of every config group, and its registration with Hydra.

YAML files under ``nmt/configs/`` hold values; the dataclasses here hold the
schema.  Closed choices are Enums, so a misspelled key or value fails when the
config is composed.  Checks that span several keys live in ``__post_init__``.

Library code receives these dataclasses (never a DictConfig) and treats them
as read-only.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, TypeVar

from omegaconf import MISSING, OmegaConf


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key."""


class DataSource(str, Enum):
    multi30k = "multi30k"
    files = "files"


class TokenizerKind(str, Enum):
    spacy = "spacy"
    whitespace = "whitespace"
    char = "char"


class CellType(str, Enum):
    rnn = "rnn"
    gru = "gru"
    lstm = "lstm"


class ChoContext(str, Enum):
    """Where Cho et al. 2014's summary vector c reaches the decoder."""

    init = "init"  # only through the initial state h'_0 = tanh(V' c)
    step = "step"  # also as an input of every recurrent step
    step_output = "step_output"  # also in the output layer, beside y_{t-1} (the paper)


class DecoderInit(str, Enum):
    """Which encoder summary starts an attention decoder (through tanh(W .))."""

    backward = "backward"  # backward RNN's state at the first word (Bahdanau et al. 2015)
    final = "final"  # final state of the top layer, both directions side by side
    mean = "mean"  # mean of the top layer's outputs over the real source positions


class AttentionScore(str, Enum):
    """Luong et al. 2015 (sec. 3.1) alignment scores."""

    dot = "dot"
    general = "general"
    concat = "concat"


class TeacherForcingSchedule(str, Enum):
    """Decay of the teacher-forcing ratio over optimizer steps (Bengio et al. 2015)."""

    constant = "constant"
    linear = "linear"
    exponential = "exponential"
    inverse_sigmoid = "inverse_sigmoid"


class InitKind(str, Enum):
    default = "default"  # PyTorch's own initialisation
    uniform = "uniform"  # U(-init_range, init_range), Sutskever et al. 2014
    xavier = "xavier"  # Glorot & Bengio 2010 on matrices, zeros on biases


class OptimizerName(str, Enum):
    adam = "adam"
    adamw = "adamw"
    sgd = "sgd"


class SchedulerName(str, Enum):
    none = "none"
    plateau = "plateau"  # per epoch, on the validation loss
    step = "step"  # per epoch
    warmup_inverse_sqrt = "warmup_inverse_sqrt"  # per optimizer step
    cosine = "cosine"  # per optimizer step


class Precision(str, Enum):
    """Autocast dtype of the training forward pass (weights stay fp32)."""

    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"  # with a gradient scaler


class DecodingStrategy(str, Enum):
    greedy = "greedy"
    beam = "beam"
    sample = "sample"


class OutputFormat(str, Enum):
    """`nmt translate` output: text lines, or ``line<TAB>rank<TAB>score<TAB>text``."""

    plain = "plain"
    tsv = "tsv"


class DeviceChoice(str, Enum):
    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class BestMetric(str, Enum):
    bleu = "bleu"
    loss = "loss"


MULTI30K_LANGS = ("de", "en", "fr", "cs")


@dataclass
class DataConfig:
    """Where the parallel text comes from.

    ``source=multi30k`` reads Multi30k task 1; ``source=files`` reads any
    aligned pair of plain-text files given by the ``*_src``/``*_tgt`` keys.
    """

    source: DataSource = DataSource.multi30k
    src_lang: str = "de"
    tgt_lang: str = "en"
    root: str | None = None  # a folder with the raw files; beats $NMT_DATA_DIR
    cache_dir: str = "data/multi30k"  # download cache, relative to the working dir
    download: bool = True
    max_train_examples: int | None = None  # null = all
    max_src_len: int = 100  # tokens; longer training pairs are skipped
    max_tgt_len: int = 100
    train_src: str | None = None
    train_tgt: str | None = None
    val_src: str | None = None
    val_tgt: str | None = None
    test_src: str | None = None
    test_tgt: str | None = None

    def __post_init__(self) -> None:
        if self.source == DataSource.multi30k:
            for key in ("src_lang", "tgt_lang"):
                value = getattr(self, key)
                if value not in MULTI30K_LANGS:
                    raise ConfigError(
                        f"data.{key}={value!r}: Multi30k has {', '.join(MULTI30K_LANGS)}"
                    )
            if self.src_lang == self.tgt_lang:
                raise ConfigError("data.src_lang and data.tgt_lang must differ")
        elif self.source == DataSource.files:
            for key in ("train_src", "train_tgt", "val_src", "val_tgt"):
                if not getattr(self, key):
                    raise ConfigError(f"data=files needs data.{key}=PATH")
            if bool(self.test_src) != bool(self.test_tgt):
                raise ConfigError("data.test_src and data.test_tgt go together")
        if self.max_train_examples is not None and self.max_train_examples < 1:
            raise ConfigError("data.max_train_examples must be >= 1 or null")


@dataclass
class TokenizerConfig:
    kind: TokenizerKind = TokenizerKind.spacy
    lower: bool = False
    reverse_source: bool = False


@dataclass
class VocabConfig:
    min_freq: int = 2
    max_size: int | None = None  # tokens besides the specials; null = no limit
    unk: str = "<unk>"
    pad: str = "<pad>"
    bos: str = "<bos>"
    eos: str = "<eos>"

    def __post_init__(self) -> None:
        if self.min_freq < 1:
            raise ConfigError("vocab.min_freq must be >= 1")
        if self.max_size is not None and self.max_size < 1:
            raise ConfigError("vocab.max_size must be >= 1 or null")
        specials = [self.unk, self.pad, self.bos, self.eos]
        if len(set(specials)) != 4 or not all(specials):
            raise ConfigError("vocab.unk/pad/bos/eos must be four distinct, non-empty strings")


@dataclass
class ModelConfig:
    """Options every architecture shares; ``arch`` picks the registered builder."""

    arch: str = MISSING
    cell: CellType = CellType.lstm
    emb_dim: int = 256
    hidden_dim: int = 512
    num_layers: int = 2
    dropout: float = 0.3
    bidirectional: bool = False
    tie_embeddings: bool = False  # decoder input and output embeddings
    init: InitKind = InitKind.default
    init_range: float = 0.08

    def __post_init__(self) -> None:
        for key in ("emb_dim", "hidden_dim", "num_layers"):
            if getattr(self, key) < 1:
                raise ConfigError(f"model.{key} must be >= 1")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout must be in [0, 1)")


@dataclass
class SutskeverConfig(ModelConfig):
    """Sutskever et al. 2014: the decoder starts from the encoder's final state."""

    arch: str = "sutskever"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tie_embeddings and self.emb_dim != self.hidden_dim:
            raise ConfigError(
                "model.tie_embeddings=true needs model.emb_dim == model.hidden_dim "
                f"(got {self.emb_dim} and {self.hidden_dim}): change one of them"
            )


def _check_tied_embeddings(cfg: ModelConfig) -> None:
    """The output layer reads ``hidden_dim`` features: tying needs emb_dim == hidden_dim."""
    if cfg.tie_embeddings and cfg.emb_dim != cfg.hidden_dim:
        raise ConfigError(
            f"model.tie_embeddings=true (arch {cfg.arch}) needs model.emb_dim == "
            f"model.hidden_dim (got {cfg.emb_dim} and {cfg.hidden_dim}): change one of them "
            "or set model.tie_embeddings=false"
        )


@dataclass
class ChoConfig(ModelConfig):
    """Cho et al. 2014 RNN Encoder-Decoder: a fixed summary c of the source starts
    the decoder and, by ``context``, also feeds every step and the output layer."""

    arch: str = "cho"
    cell: CellType = CellType.gru
    num_layers: int = 1
    context: ChoContext = ChoContext.step_output
    maxout: bool = False  # deep output: maxout (pool 2) instead of tanh; step_output only

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_tied_embeddings(self)
        if self.maxout and self.context != ChoContext.step_output:
            raise ConfigError(
                "model.maxout=true needs the deep output layer: set "
                "model.context=step_output or model.maxout=false"
            )


@dataclass
class BahdanauConfig(ModelConfig):
    """Bahdanau et al. 2015: bidirectional encoder, additive attention read from the
    previous decoder state, deep output over [state; context; embedding]."""

    arch: str = "bahdanau"
    cell: CellType = CellType.gru
    num_layers: int = 1
    bidirectional: bool = True
    decoder_init: DecoderInit = DecoderInit.backward
    maxout: bool = False  # deep output: maxout (pool 2) instead of tanh

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_tied_embeddings(self)
        if self.decoder_init == DecoderInit.backward and not self.bidirectional:
            raise ConfigError(
                "model.decoder_init=backward reads the backward encoder RNN: set "
                "model.bidirectional=true, or model.decoder_init=final|mean"
            )


@dataclass
class LuongConfig(ModelConfig):
    """Luong et al. 2015 global attention: score(h_t, h_s), attentional state
    h~_t = tanh(W_c[c_t; h_t]) and optional input feeding of h~_{t-1}."""

    arch: str = "luong"
    score: AttentionScore = AttentionScore.general
    input_feeding: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_tied_embeddings(self)
        if self.score == AttentionScore.dot and self.bidirectional:
            raise ConfigError(
                "model.score=dot needs encoder states of the decoder's size "
                f"model.hidden_dim={self.hidden_dim}, but model.bidirectional=true makes "
                f"them {2 * self.hidden_dim}: set model.bidirectional=false or "
                "model.score=general|concat"
            )


# arch name -> its config dataclass; the model registry checks it has a builder
# for each of these.
MODEL_CONFIGS: dict[str, type[ModelConfig]] = {
    "sutskever": SutskeverConfig,
    "cho": ChoConfig,
    "bahdanau": BahdanauConfig,
    "luong": LuongConfig,
}


@dataclass
class OptimizerConfig:
    name: OptimizerName = OptimizerName.adam
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd only
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])

    def __post_init__(self) -> None:
        if self.lr <= 0:
            raise ConfigError("optimizer.lr must be > 0")
        if len(self.betas) != 2:
            raise ConfigError("optimizer.betas takes two numbers")


@dataclass
class SchedulerConfig:
    name: SchedulerName = SchedulerName.none
    factor: float = 0.5  # plateau, step: multiply the lr by this
    patience: int = 1  # plateau: epochs without improvement of the val loss
    step_size: int = 1  # step: epochs between decays
    min_lr: float = 1e-6  # plateau: floor; cosine: the value it decays to
    # warmup_inverse_sqrt, cosine: optimizer steps of linear warm-up from lr/warmup_steps
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.factor <= 1.0:
            raise ConfigError(f"scheduler.factor={self.factor} must be in (0, 1]")
        if self.patience < 0 or self.step_size < 1:
            raise ConfigError("scheduler.patience must be >= 0 and scheduler.step_size >= 1")
        if self.min_lr < 0:
            raise ConfigError(f"scheduler.min_lr={self.min_lr} must be >= 0")
        if self.warmup_steps < 0:
            raise ConfigError(f"scheduler.warmup_steps={self.warmup_steps} must be >= 0")
        if self.name == SchedulerName.warmup_inverse_sqrt and self.warmup_steps < 1:
            raise ConfigError(
                "scheduler=warmup_inverse_sqrt needs scheduler.warmup_steps >= 1 "
                "(the lr peaks there, then falls as 1/sqrt(step))"
            )


@dataclass
class TrainerConfig:
    max_epochs: int = 10
    max_steps: int | None = None  # stop after this many optimizer steps in all
    max_minutes: float | None = None  # wall-clock budget; stops after the epoch it ends in
    batch_size: int = 128
    clip_grad_norm: float | None = 1.0
    teacher_forcing: float = 1.0  # the ratio (constant schedule) or its start value
    # Bengio et al. 2015 (sec. 2.4), i = optimizer steps taken, each floored at
    # teacher_forcing_min: linear tf - k*i; exponential tf * k^i (0<k<1);
    # inverse_sigmoid tf * k / (k + exp(i/k)) (k>=1).
    teacher_forcing_schedule: TeacherForcingSchedule = TeacherForcingSchedule.constant
    teacher_forcing_k: float | None = None  # the schedule's k; needed unless constant
    teacher_forcing_min: float = 0.0
    device: DeviceChoice = DeviceChoice.auto
    seed: int = 1234
    best_metric: BestMetric = BestMetric.bleu
    bleu_every_epoch: bool = True
    val_max_examples: int | None = None  # decode only this many val lines for BLEU
    log_every_steps: int = 50
    test_split: str | None = "test_2016_flickr"  # evaluated at the end; "all" = every
    # test split found locally; null = none
    resume_from: str | None = None  # a checkpoint, or a run dir (its checkpoints/last.pt)
    # padded source + target tokens per batch (beside batch_size sentences); null = off
    max_tokens: int | None = None
    label_smoothing: float = 0.0  # training loss only; val loss/ppl stay the plain NLL
    patience: int | None = None  # early stop after this many epochs without a new best
    precision: Precision = Precision.fp32  # autocast: fp32 | bf16 | fp16 (grad scaler)
    compile: bool = False  # torch.compile the model's forward
    save_every_steps: int | None = None  # also save last.pt mid-epoch every N steps
    keep_last: int = 0  # keep the newest N checkpoints/step_NNNNNN.pt (0 = none)
    tensorboard: bool = False  # also log to TensorBoard (when it is installed)

    def __post_init__(self) -> None:
        if self.max_epochs < 1:
            raise ConfigError("trainer.max_epochs must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("trainer.max_steps must be >= 1 or null")
        if self.batch_size < 1:
            raise ConfigError("trainer.batch_size must be >= 1")
        self._check_robustness_keys()
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ConfigError("trainer.teacher_forcing must be in [0, 1]")
        self._check_teacher_forcing_schedule()
        if self.clip_grad_norm is not None and self.clip_grad_norm <= 0:
            raise ConfigError("trainer.clip_grad_norm must be > 0 or null")

    def _check_robustness_keys(self) -> None:
        for key in ("max_tokens", "patience", "save_every_steps"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"trainer.{key}={value} must be >= 1 or null")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"trainer.label_smoothing={self.label_smoothing} must be in [0, 1)")
        if self.keep_last < 0:
            raise ConfigError(f"trainer.keep_last={self.keep_last} must be >= 0")
        if self.log_every_steps < 1:
            raise ConfigError("trainer.log_every_steps must be >= 1")

    def _check_teacher_forcing_schedule(self) -> None:
        schedule, k = self.teacher_forcing_schedule, self.teacher_forcing_k
        if not 0.0 <= self.teacher_forcing_min <= self.teacher_forcing:
            raise ConfigError("trainer.teacher_forcing_min must be in [0, trainer.teacher_forcing]")
        allowed = {
            TeacherForcingSchedule.linear: ("> 0 (the decrease per step)", lambda v: v > 0),
            TeacherForcingSchedule.exponential: ("in (0, 1)", lambda v: 0 < v < 1),
            TeacherForcingSchedule.inverse_sigmoid: (">= 1", lambda v: v >= 1),
        }
        if schedule in allowed:
            text, ok = allowed[schedule]
            if k is None or not ok(k):
                raise ConfigError(
                    f"trainer.teacher_forcing_schedule={schedule.value} needs "
                    f"trainer.teacher_forcing_k {text}; got {k}"
                )


@dataclass
class DecodingConfig:
    strategy: DecodingStrategy = DecodingStrategy.greedy
    max_len: int = 100  # output tokens, <eos> excluded
    max_len_ratio: float | None = 2.0  # also stop at ratio * source length + 10
    min_len: int = 0  # output tokens before <eos> is allowed
    batch_size: int = 128  # sentences per batch (beam: times beam_size rows)
    beam_size: int = 5  # beam only
    n_best: int = 1  # hypotheses per sentence (beam: <= beam_size; sample: samples)
    # GNMT length penalty (Wu et al. 2016, eq. 14): score = log P / ((5 + |Y|) / 6)^alpha;
    # 0 = plain log-probability.  Ranks beam hypotheses and n-best samples.
    length_penalty: float = 0.0
    temperature: float = 1.0  # sample only: logits / temperature
    top_k: int = 0  # sample only: keep the k most probable tokens; 0 = all
    top_p: float = 1.0  # sample only: nucleus, smallest set with mass >= top_p
    seed: int = 1234  # sample only
    replace_unk: bool = False  # <unk> -> the most attended source token (attention models)

    def __post_init__(self) -> None:
        if self.max_len < 1:
            raise ConfigError("decoding.max_len must be >= 1")
        if self.max_len_ratio is not None and self.max_len_ratio <= 0:
            raise ConfigError("decoding.max_len_ratio must be > 0 or null")
        if not 0 <= self.min_len <= self.max_len:
            raise ConfigError(
                f"decoding.min_len={self.min_len} must be in [0, decoding.max_len={self.max_len}]"
            )
        if self.batch_size < 1:
            raise ConfigError("decoding.batch_size must be >= 1")
        self._check_search()
        self._check_sampling()

    def _check_search(self) -> None:
        if self.beam_size < 1:
            raise ConfigError("decoding.beam_size must be >= 1")
        if self.n_best < 1:
            raise ConfigError("decoding.n_best must be >= 1")
        if self.strategy == DecodingStrategy.beam and self.n_best > self.beam_size:
            raise ConfigError(
                f"decoding.n_best={self.n_best} needs decoding.beam_size >= n_best "
                f"(got beam_size={self.beam_size})"
            )
        if self.strategy == DecodingStrategy.greedy and self.n_best > 1:
            raise ConfigError(
                f"decoding.n_best={self.n_best} needs decoding=beam or decoding=sample "
                "(greedy gives one hypothesis)"
            )
        if not 0 <= self.length_penalty <= 10:  # ((5 + |Y|) / 6)^alpha overflows further up
            raise ConfigError(
                f"decoding.length_penalty={self.length_penalty} must be in [0, 10] "
                "(0 = none; Wu et al. 2016 use 0.6 to 1)"
            )

    def _check_sampling(self) -> None:
        if self.temperature <= 0:
            raise ConfigError(f"decoding.temperature={self.temperature} must be > 0")
        if self.top_k < 0:
            raise ConfigError(f"decoding.top_k={self.top_k} must be >= 0 (0 = no limit)")
        if not 0 < self.top_p <= 1:
            raise ConfigError(f"decoding.top_p={self.top_p} must be in (0, 1]")


@dataclass
class TrainConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    vocab: VocabConfig = field(default_factory=VocabConfig)
    model: Any = MISSING  # a ModelConfig subclass, chosen by the model group
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    decoding: DecodingConfig = field(default_factory=DecodingConfig)
    name: str = "nmt"  # a label for the run


@dataclass
class EvaluateConfig:
    checkpoint: str = MISSING
    split: str = "test_2016_flickr"  # a Multi30k split, or ignored when src/ref given
    src: str | None = None  # evaluate on files instead of a split
    ref: str | None = None
    data_root: str | None = None  # where the Multi30k files are; else as trained
    output_dir: str | None = None  # default: next to the checkpoint
    device: DeviceChoice = DeviceChoice.auto
    decoding: DecodingConfig = field(default_factory=DecodingConfig)

    def __post_init__(self) -> None:
        if bool(self.src) != bool(self.ref):
            raise ConfigError("evaluate: src= and ref= go together")


@dataclass
class TranslateConfig:
    checkpoint: str = MISSING
    input: str = "-"  # a file, or - for stdin
    output: str = "-"  # a file, or - for stdout
    output_format: OutputFormat = OutputFormat.plain  # tsv: line, rank, score, text
    attention_plots: str | None = None  # a folder: one PNG heatmap per sentence
    attention_plots_max: int = 20  # plots for the first N input lines only
    device: DeviceChoice = DeviceChoice.auto
    decoding: DecodingConfig = field(default_factory=DecodingConfig)

    def __post_init__(self) -> None:
        if self.attention_plots_max < 0:
            raise ConfigError("attention_plots_max must be >= 0")


@dataclass
class DataCommandConfig:
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    splits: list[str] = field(default_factory=lambda: ["train", "val", "test_2016_flickr"])
    stats: bool = True


def register_configs() -> None:
    """Register every schema with Hydra's ConfigStore (called by the CLI)."""
    from hydra.core.config_store import ConfigStore

    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="evaluate_schema", node=EvaluateConfig)
    cs.store(name="translate_schema", node=TranslateConfig)
    cs.store(name="data_schema", node=DataCommandConfig)
    for arch, cls in MODEL_CONFIGS.items():
        cs.store(group="model", name=f"{arch}_schema", node=cls)
    register_serve_config()


T = TypeVar("T")


def _unknown_keys(node: Any, prefix: str = "") -> list[str]:
    """Keys of a merged config that its dataclass does not declare.

    ``+trainer.max_epoch=3`` opens the node for a new key; OmegaConf would then
    drop the key without a word when it builds the dataclass.
    """
    from omegaconf import DictConfig

    kind = OmegaConf.get_type(node)
    names = {f.name for f in dataclasses.fields(kind)} if dataclasses.is_dataclass(kind) else None
    unknown = []
    for key in node:
        if names is not None and key not in names:
            unknown.append(f"{prefix}{key}")
        child = node._get_node(key)
        if isinstance(child, DictConfig) and not child._is_missing() and not child._is_none():
            unknown += _unknown_keys(child, f"{prefix}{key}.")
    return unknown


def to_dataclass(cfg: Any, schema: type[T]) -> T:
    """Turn a composed DictConfig (or plain dict) into the validated dataclass."""
    node = OmegaConf.merge(OmegaConf.structured(schema), cfg)
    unknown = _unknown_keys(node)
    if unknown:
        raise ConfigError(f"unknown config key(s): {', '.join(unknown)} (check the spelling)")
    obj = OmegaConf.to_object(node)
    if isinstance(obj, dict):  # pragma: no cover - defensive
        raise ConfigError(f"config did not convert to {schema.__name__}")
    return obj  # type: ignore[return-value]


def model_config_from_dict(data: dict[str, Any]) -> ModelConfig:
    """Rebuild a model config stored as plain data (inside a checkpoint)."""
    arch = data.get("arch")
    if arch not in MODEL_CONFIGS:
        raise ConfigError(
            f"model.arch={arch!r} is not known; known: {', '.join(sorted(MODEL_CONFIGS))}"
        )
    return to_dataclass(data, MODEL_CONFIGS[arch])


def train_config_from_dict(data: dict[str, Any]) -> TrainConfig:
    """Rebuild a TrainConfig stored as plain data (inside a checkpoint)."""
    data = dict(data)
    model = model_config_from_dict(data.pop("model"))
    cfg = to_dataclass(data | {"model": dataclasses.asdict(model)}, TrainConfig)
    cfg.model = model
    return cfg


def to_plain(obj: Any) -> Any:
    """A dataclass config as nested dicts of str/int/float/bool/None/list."""
    return OmegaConf.to_container(OmegaConf.structured(obj), enum_to_str=True)


# -- `nmt serve` (issue 13): kept as one block so that it moves as a whole ----------------
@dataclass
class ServeConfig:
    """`nmt serve`: an HTTP server and web page over one checkpoint.

    ``decoding`` is what a request gets when it names no strategy (or the same
    one); the ``max_*`` keys bound what one request may ask for.  Requests that
    arrive within ``batch_wait_ms`` of each other are decoded together, up to
    ``max_batch_lines`` lines.
    """

    checkpoint: str = MISSING
    host: str = "127.0.0.1"  # localhost only; 0.0.0.0 opens the server to the network
    port: int = 8000
    device: DeviceChoice = DeviceChoice.auto
    max_lines: int = 64  # lines in one request
    max_line_chars: int = 1000  # characters in one line
    max_body_bytes: int = 262144  # request body (Content-Length and the bytes read)
    max_beam_size: int = 16
    max_n_best: int = 16
    batch_wait_ms: float = 5.0  # how long a batch stays open for more requests
    max_batch_lines: int = 128  # lines decoded together at most
    decoding: DecodingConfig = field(default_factory=DecodingConfig)

    def __post_init__(self) -> None:
        if not 0 < self.port < 65536:
            raise ConfigError(f"port={self.port} must be in [1, 65535]")
        limits = ("max_lines", "max_line_chars", "max_body_bytes", "max_beam_size", "max_n_best")
        for key in (*limits, "max_batch_lines"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{key}={getattr(self, key)} must be >= 1")
        if self.batch_wait_ms < 0:
            raise ConfigError(f"batch_wait_ms={self.batch_wait_ms} must be >= 0")


def decoding_preset(name: str) -> DecodingConfig:
    """The decoding config that ``decoding=<name>`` selects (configs/decoding/<name>.yaml)."""
    from pathlib import Path

    path = Path(__file__).parent / "configs" / "decoding" / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"decoding={name!r} is not a preset in {path.parent}")
    return to_dataclass(OmegaConf.load(path), DecodingConfig)


def register_serve_config() -> None:
    """Register ``serve_schema`` with Hydra's ConfigStore (called by register_configs)."""
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="serve_schema", node=ServeConfig)
