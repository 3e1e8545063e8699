"""Schema of the text side: where the parallel text comes from, how it is cut
into tokens, and which tokens the vocabularies keep (groups ``data``,
``tokenizer`` and ``vocab``)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from nmt.config.errors import ConfigError


class DataSource(str, Enum):
    multi30k = "multi30k"
    files = "files"


class TokenizerKind(str, Enum):
    spacy = "spacy"
    whitespace = "whitespace"
    char = "char"


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
            self._check_multi30k_langs()
        elif self.source == DataSource.files:
            for key in ("train_src", "train_tgt", "val_src", "val_tgt"):
                if not getattr(self, key):
                    raise ConfigError(f"data=files needs data.{key}=PATH")
            if bool(self.test_src) != bool(self.test_tgt):
                raise ConfigError("data.test_src and data.test_tgt go together")
        if self.max_train_examples is not None and self.max_train_examples < 1:
            raise ConfigError("data.max_train_examples must be >= 1 or null")

    def _check_multi30k_langs(self) -> None:
        for key in ("src_lang", "tgt_lang"):
            value = getattr(self, key)
            if value not in MULTI30K_LANGS:
                raise ConfigError(f"data.{key}={value!r}: Multi30k has {', '.join(MULTI30K_LANGS)}")
        if self.src_lang == self.tgt_lang:
            raise ConfigError("data.src_lang and data.tgt_lang must differ")


@dataclass
class TokenizerConfig:
    kind: TokenizerKind = TokenizerKind.spacy
    lower: bool = False
    reverse_source: bool = False  # feed the source backwards (Sutskever et al. 2014)


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
