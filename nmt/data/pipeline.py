"""Raw text <-> ids: the tokenizers and vocabularies of one model.

``TextPipeline`` is what a checkpoint carries besides the weights: it is
built once from the training text (:func:`build_training_data`), saved as
plain data (``state()``) and rebuilt from it (``from_state``), and it tells
the model builder the vocabulary sizes (``vocab_sizes``).  Reading the corpus
is ``nmt.data.corpus``'s job; this module starts from its lines.

With ``tokenizer=sentencepiece`` the subword models are learned from (or
found in the cache for) the training text, and each vocabulary is its
model's pieces in id order.  ``nmt train`` encodes its corpus once, into the
prepared store (``nmt.data.store``), which also samples segmentations per
batch under subword regularization; :func:`build_training_data` is the same
work in memory, for small texts (tests, benchmarks).
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from nmt.config import DataConfig, TokenizerConfig, TokenizerKind, TrainConfig, VocabConfig
from nmt.data.batching import Example, encode_pairs
from nmt.data.corpus import ParallelText
from nmt.data.subword import cached_model, seed_sampling
from nmt.data.text import clean_lines
from nmt.data.tokenizer import Tokenizer, build_tokenizers
from nmt.data.vocab import Vocab
from nmt.models.registry import VocabSizes

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass
class TextPipeline:
    """Tokenizers and vocabularies of a model: raw text <-> ids."""

    src_tokenizer: Tokenizer
    tgt_tokenizer: Tokenizer
    src_vocab: Vocab
    tgt_vocab: Vocab
    max_src_len: int = 100

    @property
    def vocab_sizes(self) -> VocabSizes:
        """The vocabulary sizes and padding ids a model is built with."""
        return VocabSizes(
            src=len(self.src_vocab),
            tgt=len(self.tgt_vocab),
            src_pad=self.src_vocab.pad_idx,
            tgt_pad=self.tgt_vocab.pad_idx,
            joint=self.src_vocab == self.tgt_vocab,
        )

    def tokenize_sources(self, texts: Sequence[str]) -> tuple[list[list[str]], list[int]]:
        """Tokens of each source line in the order the model reads them (cut to
        ``max_src_len``), and the 1-based numbers of the lines that were cut."""
        result, cut = [], []
        for number, tokens in enumerate(tokenize(self.src_tokenizer, texts), 1):
            if len(tokens) > self.max_src_len:
                cut.append(number)
                tokens = cut_source(tokens, self.max_src_len, self.src_tokenizer.reverse)
            result.append(tokens)
        return result, cut

    def encode_sources(self, texts: Sequence[str]) -> tuple[list[list[int]], list[int]]:
        """Ids of each source line (cut to ``max_src_len`` tokens) and the
        1-based numbers of the lines that were cut."""
        tokens, cut = self.tokenize_sources(texts)
        return [self.src_vocab.encode(t, add_bos=False, add_eos=False) for t in tokens], cut

    def encode_pairs(self, src: Sequence[str], tgt: Sequence[str]) -> list[Example]:
        """Id pairs of aligned raw lines (sources cut as ``encode_sources`` cuts them)."""
        src_ids, _ = self.encode_sources(src)
        tgt_ids = [
            self.tgt_vocab.encode(t, add_bos=False, add_eos=False)
            for t in tokenize(self.tgt_tokenizer, tgt)
        ]
        return list(zip(src_ids, tgt_ids, strict=True))

    def decode(self, ids: Sequence[int]) -> str:
        return self.tgt_tokenizer.detokenize(self.tgt_vocab.decode(ids))

    def state(self) -> dict[str, Any]:
        """Plain data for a checkpoint."""
        return {
            "src_tokenizer": self.src_tokenizer.to_dict(),
            "tgt_tokenizer": self.tgt_tokenizer.to_dict(),
            "src_vocab": self.src_vocab.to_dict(),
            "tgt_vocab": self.tgt_vocab.to_dict(),
            "max_src_len": self.max_src_len,
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> TextPipeline:
        return cls(
            src_tokenizer=Tokenizer.from_dict(state["src_tokenizer"]),
            tgt_tokenizer=Tokenizer.from_dict(state["tgt_tokenizer"]),
            src_vocab=Vocab.from_dict(state["src_vocab"]),
            tgt_vocab=Vocab.from_dict(state["tgt_vocab"]),
            max_src_len=int(state.get("max_src_len", 100)),
        )


def cut_source(seq: list[T], limit: int, reverse: bool) -> list[T]:
    """A source (tokens or ids) cut to ``limit`` items, keeping the sentence's
    beginning even when the model reads it reversed (then it is the list's end)."""
    if len(seq) <= limit:
        return seq
    return seq[-limit:] if reverse else seq[:limit]


def tokenize(
    tokenizer: Tokenizer, texts: Sequence[str], sampling: tuple[float, int] | None = None
) -> list[list[str]]:
    """Tokens of raw lines, invisible characters removed first
    (:func:`nmt.data.text.clean_line`): the one way into every tokenizer.
    ``sampling`` is subword regularization's (alpha, nbest_size), training only."""
    return tokenizer.tokenize_many(clean_lines(texts), sampling)


def _training_tokens(
    text: ParallelText, src_tok: Tokenizer, tgt_tok: Tokenizer, data: DataConfig
) -> tuple[list[list[str]], list[list[str]], list[int]]:
    """Tokens of the training pairs, without the empty or over-long ones
    (longer than data.max_src_len / data.max_tgt_len), and the kept pairs' indices."""
    src_tokens = tokenize(src_tok, text.src)
    tgt_tokens = tokenize(tgt_tok, text.tgt)
    keep = [
        i
        for i, (s, t) in enumerate(zip(src_tokens, tgt_tokens, strict=True))
        if 0 < len(s) <= data.max_src_len and 0 < len(t) <= data.max_tgt_len
    ]
    if len(keep) < len(src_tokens):
        log.info("skipped %d empty or over-long training pairs", len(src_tokens) - len(keep))
    return [src_tokens[i] for i in keep], [tgt_tokens[i] for i in keep], keep


def _subword_models(
    lines: Callable[[str], Iterable[str]],
    count: int,
    cfg: TokenizerConfig,
    data: DataConfig,
    vocab: VocabConfig,
) -> tuple[bytes, bytes]:
    """Source and target sentencepiece models (one model for both with
    ``joint``), from the cache when it has them.  ``lines(side)`` yields the
    ``count`` cleaned (and, with ``tokenizer.lower``, lower-cased) training
    lines of ``side`` ("src" or "tgt")."""
    if cfg.joint:  # in language order, so that both directions share the model
        order = ("src", "tgt") if data.src_lang <= data.tgt_lang else ("tgt", "src")

        def both() -> Iterable[str]:
            return itertools.chain(lines(order[0]), lines(order[1]))

        model = cached_model(both, 2 * count, cfg, vocab, data.subword_dir)
        return model, model
    src, tgt = (
        cached_model(functools.partial(lines, side), count, cfg, vocab, data.subword_dir)
        for side in ("src", "tgt")
    )
    return src, tgt


def make_tokenizers_from_lines(
    lines: Callable[[str], Iterable[str]],
    count: int,
    cfg: TokenizerConfig,
    data: DataConfig,
    vocab: VocabConfig,
) -> tuple[Tokenizer, Tokenizer]:
    """Source and target tokenizers; sentencepiece ones learn (or find in the
    cache) their models from the ``count`` lines ``lines(side)`` yields."""
    models = None
    if cfg.kind == TokenizerKind.sentencepiece:
        models = _subword_models(lines, count, cfg, data, vocab)
    return build_tokenizers(cfg, data.src_lang, data.tgt_lang, models)


def make_tokenizers(
    text: ParallelText, cfg: TokenizerConfig, data: DataConfig, vocab: VocabConfig
) -> tuple[Tokenizer, Tokenizer]:
    """Source and target tokenizers; sentencepiece ones learn (or find in the
    cache) their models from the training ``text``."""

    def lines(side: str) -> list[str]:
        cleaned = clean_lines(text.src if side == "src" else text.tgt)
        return [line.lower() for line in cleaned] if cfg.lower else cleaned

    return make_tokenizers_from_lines(lines, len(text), cfg, data, vocab)


def _vocab(tokenizer: Tokenizer, sentences: list[list[str]], cfg: VocabConfig) -> Vocab:
    """Counted from the training tokens, or a sentencepiece model's pieces (ids kept)."""
    if tokenizer.kind != TokenizerKind.sentencepiece:
        return Vocab.build(sentences, cfg)
    pieces = tokenizer.pieces
    vocab = Vocab(pieces, cfg.unk, cfg.pad, cfg.bos, cfg.eos)
    if vocab.itos != pieces:  # pragma: no cover - the trainer is told these ids
        raise ValueError("sentencepiece ids do not match the vocabulary's")
    return vocab


def build_training_data(
    text: ParallelText, cfg: TrainConfig, pipeline: TextPipeline | None = None
) -> tuple[TextPipeline, list[Example]]:
    """Tokenize the training text, build the vocabularies (unless ``pipeline`` -
    a resumed run's, from its checkpoint - brings them) and encode the pairs
    that are neither empty nor over-long."""
    if pipeline is not None:
        src_tok, tgt_tok = pipeline.src_tokenizer, pipeline.tgt_tokenizer
    else:
        src_tok, tgt_tok = make_tokenizers(text, cfg.tokenizer, cfg.data, cfg.vocab)
    src_tokens, tgt_tokens, _ = _training_tokens(text, src_tok, tgt_tok, cfg.data)
    if pipeline is None:
        pipeline = TextPipeline(
            src_tokenizer=src_tok,
            tgt_tokenizer=tgt_tok,
            src_vocab=_vocab(src_tok, src_tokens, cfg.vocab),
            tgt_vocab=_vocab(tgt_tok, tgt_tokens, cfg.vocab),
            max_src_len=cfg.data.max_src_len,
        )
    examples = encode_pairs(src_tokens, tgt_tokens, pipeline.src_vocab, pipeline.tgt_vocab)
    log.info(
        "train pairs: %d | vocab: src %d, tgt %d",
        len(examples),
        len(pipeline.src_vocab),
        len(pipeline.tgt_vocab),
    )
    return pipeline, examples
