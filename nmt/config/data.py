"""Schema of the text side: where the parallel text comes from, how it is cut
into tokens, and which tokens the vocabularies keep (groups ``data``,
``tokenizer`` and ``vocab``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from nmt.config.checks import check_finite
from nmt.config.errors import ConfigError


class DataSource(str, Enum):
    multi30k = "multi30k"
    files = "files"
    hf = "hf"  # anything Hugging Face `datasets` loads: a hub name, local parquet/json/arrow


class TokenizerKind(str, Enum):
    spacy = "spacy"
    whitespace = "whitespace"
    char = "char"
    sentencepiece = "sentencepiece"  # subwords learned from the training text


class SubwordModel(str, Enum):
    """sentencepiece's segmentation models (Kudo 2018; Sennrich et al. 2016)."""

    unigram = "unigram"
    bpe = "bpe"


MULTI30K_LANGS = ("de", "en", "fr", "cs")


@dataclass
class DataConfig:
    """Where the parallel text comes from.

    ``source=multi30k`` reads Multi30k task 1; ``source=files`` reads any
    aligned pair of plain-text files given by the ``*_src``/``*_tgt`` keys;
    ``source=hf`` reads what Hugging Face ``datasets`` loads (the ``hf_*``
    keys).  Training reads every split through the prepared store
    (``nmt.data.store``) in ``store_dir``.
    """

    source: DataSource = DataSource.multi30k
    src_lang: str = "de"
    tgt_lang: str = "en"
    root: str | None = None  # a folder with the raw files; beats $NMT_DATA_DIR
    cache_dir: str = "data/multi30k"  # download cache, relative to the working dir
    store_dir: str = "data/prepared"  # prepared (tokenized, encoded) corpora, one folder each
    subword_dir: str = "data/sentencepiece"  # cache of learned sentencepiece models
    prepare_workers: int | None = None  # processes that tokenize and encode; null = all cores
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
    # source=hf: a hub name ("wmt14"), a builder with data files ("parquet", "json",
    # "arrow") or a folder written by Dataset.save_to_disk / DatasetDict.save_to_disk
    hf_path: str | None = None
    hf_name: str | None = None  # the hub dataset's config, e.g. "de-en"
    # a builder's files per split name: +data.hf_data_files.train=a.parquet (empty: the hub's)
    hf_data_files: dict[str, str] = field(default_factory=dict)
    # our split -> the dataset's split name
    hf_splits: dict[str, str] = field(
        default_factory=lambda: {"train": "train", "val": "validation", "test": "test"}
    )
    hf_column: str = "translation"  # a column of {lang: text} records (as wmt14 has)
    hf_src_column: str | None = None  # or two plain text columns (both keys set)
    hf_tgt_column: str | None = None

    def __post_init__(self) -> None:
        if self.source == DataSource.multi30k:
            self._check_multi30k_langs()
        elif self.source == DataSource.files:
            for key in ("train_src", "train_tgt", "val_src", "val_tgt"):
                if not getattr(self, key):
                    raise ConfigError(f"data=files needs data.{key}=PATH")
            if bool(self.test_src) != bool(self.test_tgt):
                raise ConfigError("data.test_src and data.test_tgt go together")
        else:
            self._check_hf()
        if self.max_train_examples is not None and self.max_train_examples < 1:
            raise ConfigError("data.max_train_examples must be >= 1 or null")
        if self.prepare_workers is not None and self.prepare_workers < 1:
            raise ConfigError("data.prepare_workers must be >= 1 or null")

    def _check_hf(self) -> None:
        if not self.hf_path:
            raise ConfigError("data=hf needs data.hf_path=NAME_OR_FOLDER")
        if bool(self.hf_src_column) != bool(self.hf_tgt_column):
            raise ConfigError("data.hf_src_column and data.hf_tgt_column go together")
        for split in ("train", "val"):
            if split not in self.hf_splits:
                raise ConfigError(f"data.hf_splits needs a {split!r} entry")

    def _check_multi30k_langs(self) -> None:
        for key in ("src_lang", "tgt_lang"):
            value = getattr(self, key)
            if value not in MULTI30K_LANGS:
                raise ConfigError(f"data.{key}={value!r}: Multi30k has {', '.join(MULTI30K_LANGS)}")
        if self.src_lang == self.tgt_lang:
            raise ConfigError("data.src_lang and data.tgt_lang must differ")


@dataclass
class TokenizerConfig:
    """How text is cut into tokens.  The keys after ``reverse_source`` are read
    only by ``kind=sentencepiece`` (whose vocabulary is its pieces, so the
    ``vocab`` group's min_freq / max_size do not apply to it)."""

    kind: TokenizerKind = TokenizerKind.spacy
    lower: bool = False
    reverse_source: bool = False  # feed the source backwards (Sutskever et al. 2014)
    model_type: SubwordModel = SubwordModel.unigram
    vocab_size: int = 8000  # pieces per model, specials and 256 byte pieces included
    joint: bool = True  # one model and one vocabulary for both languages
    character_coverage: float = 1.0  # share of the characters that get pieces of their own
    sample_alpha: float = 0.0  # unigram sampling while training (Kudo 2018); 0 = off
    nbest_size: int = -1  # unigram sampling: from the n best segmentations; -1 = all
    bpe_dropout: float = 0.0  # BPE-dropout while training (Provilkov et al. 2020); 0 = off
    # a larger training text is sampled (seeded) down to this many sentences to learn from
    input_sentence_size: int = 1_000_000

    def __post_init__(self) -> None:
        check_finite(self, "tokenizer.")
        if self.vocab_size < 300:
            raise ConfigError("tokenizer.vocab_size must be >= 300 (256 byte pieces come first)")
        if not 0.0 < self.character_coverage <= 1.0:
            raise ConfigError("tokenizer.character_coverage must be in (0, 1]")
        if self.sample_alpha < 0.0 or not 0.0 <= self.bpe_dropout < 1.0:
            raise ConfigError(
                "tokenizer.sample_alpha must be >= 0, tokenizer.bpe_dropout in [0, 1)"
            )
        if self.input_sentence_size <= 100:
            raise ConfigError("tokenizer.input_sentence_size must be > 100 (sentencepiece's least)")
        if self.nbest_size in (0, 1) or self.nbest_size < -1:
            raise ConfigError(
                f"tokenizer.nbest_size={self.nbest_size}: sample from the n >= 2 best "
                "segmentations, or -1 for all (1 would be no sampling)"
            )
        self._check_regularization()

    def _check_regularization(self) -> None:
        if self.sample_alpha > 0 and self.model_type != SubwordModel.unigram:
            raise ConfigError(
                "tokenizer.sample_alpha needs model_type=unigram; BPE uses bpe_dropout"
            )
        if self.bpe_dropout > 0 and self.model_type != SubwordModel.bpe:
            raise ConfigError(
                "tokenizer.bpe_dropout needs model_type=bpe; unigram uses sample_alpha"
            )
        if self.regularizes and self.kind != TokenizerKind.sentencepiece:
            raise ConfigError("tokenizer.sample_alpha / bpe_dropout need tokenizer=sentencepiece")

    @property
    def regularizes(self) -> bool:
        """True when training samples segmentations (subword regularization)."""
        return self.sample_alpha > 0 or self.bpe_dropout > 0


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
