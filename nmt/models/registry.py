"""Model registry: architecture name -> builder.

A builder takes the architecture's config dataclass and the vocabulary facts a
model needs (sizes and the padding index) and returns a :class:`Seq2Seq`.
Configs name architectures by ``arch``; nothing in a config names code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from nmt.config import MODEL_CONFIGS, TIE_ALL, ConfigError, ModelConfig

if TYPE_CHECKING:
    from nmt.models.seq2seq import Seq2Seq


@dataclass(frozen=True)
class VocabSizes:
    """What a model needs to know about the vocabularies."""

    src: int
    tgt: int
    src_pad: int
    tgt_pad: int
    joint: bool = False  # one vocabulary for both languages (model.tie_embeddings=all)


Builder = Callable[[Any, VocabSizes], "Seq2Seq"]
_BUILDERS: dict[str, Builder] = {}
F = TypeVar("F", bound=Builder)


def register_model(arch: str) -> Callable[[F], F]:
    """Decorator: register ``builder(cfg, sizes) -> Seq2Seq`` under ``arch``."""

    def wrap(builder: F) -> F:
        if arch in _BUILDERS:
            raise ValueError(f"model arch {arch!r} is registered twice")
        if arch not in MODEL_CONFIGS:
            raise ValueError(f"model arch {arch!r} has no config class in nmt.config.MODEL_CONFIGS")
        _BUILDERS[arch] = builder
        return builder

    return wrap


def _load_builtin() -> None:
    # Importing the modules runs their @register_model decorators.
    from nmt.models import archs, transformer  # noqa: F401


def registered_archs() -> list[str]:
    _load_builtin()
    return sorted(_BUILDERS)


def build_model(cfg: ModelConfig, sizes: VocabSizes) -> Seq2Seq:
    """Build the model ``cfg.arch`` names, with its parameters initialised."""
    _load_builtin()
    if cfg.arch not in _BUILDERS:
        raise ConfigError(
            f"model.arch={cfg.arch!r} is not registered; known: {', '.join(registered_archs())}"
        )
    expected = MODEL_CONFIGS[cfg.arch]
    if not isinstance(cfg, expected):
        raise ConfigError(f"model.arch={cfg.arch!r} needs a {expected.__name__}")
    tie_all = cfg.tie_embeddings == TIE_ALL
    if tie_all and not sizes.joint:
        raise ConfigError(
            "model.tie_embeddings=all needs one vocabulary for both languages "
            "(tokenizer=sentencepiece with tokenizer.joint=true), but the source and "
            "target vocabularies differ: set model.tie_embeddings=true or false"
        )
    model = _BUILDERS[cfg.arch](cfg, sizes)
    if tie_all:
        from nmt.models.seq2seq import share_source_embedding

        share_source_embedding(model)
    return model
