"""Raw text <-> ids: the tokenizers and vocabularies of one model.

``TextPipeline`` is what a checkpoint carries besides the weights: it is
built once from the training text (:func:`build_training_data`), saved as
plain data (``state()``) and rebuilt from it (``from_state``), and it tells
the model builder the vocabulary sizes (``vocab_sizes``).  Reading the corpus
is ``nmt.data.corpus``'s job; this module starts from its lines.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from nmt.config import DataConfig, TrainConfig
from nmt.data.batching import Example, encode_pairs
from nmt.data.corpus import ParallelText
from nmt.data.text import clean_lines
from nmt.data.tokenizer import Tokenizer, build_tokenizers
from nmt.data.vocab import Vocab
from nmt.models.registry import VocabSizes

log = logging.getLogger(__name__)


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
        )

    def tokenize_sources(self, texts: Sequence[str]) -> tuple[list[list[str]], list[int]]:
        """Tokens of each source line in the order the model reads them (cut to
        ``max_src_len``), and the 1-based numbers of the lines that were cut."""
        result, cut = [], []
        for number, tokens in enumerate(tokenize(self.src_tokenizer, texts), 1):
            if len(tokens) > self.max_src_len:
                cut.append(number)
                # keep the sentence's beginning even when the model reads it reversed
                tokens = (
                    tokens[-self.max_src_len :]
                    if self.src_tokenizer.reverse
                    else tokens[: self.max_src_len]
                )
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


def tokenize(tokenizer: Tokenizer, texts: Sequence[str]) -> list[list[str]]:
    """Tokens of raw lines, invisible characters removed first
    (:func:`nmt.data.text.clean_line`): the one way into every tokenizer."""
    return tokenizer.tokenize_many(clean_lines(texts))


def _training_tokens(
    text: ParallelText, src_tok: Tokenizer, tgt_tok: Tokenizer, data: DataConfig
) -> tuple[list[list[str]], list[list[str]]]:
    """Tokens of the training pairs, without the empty or over-long ones
    (longer than data.max_src_len / data.max_tgt_len)."""
    src_tokens = tokenize(src_tok, text.src)
    tgt_tokens = tokenize(tgt_tok, text.tgt)
    keep = [
        i
        for i, (s, t) in enumerate(zip(src_tokens, tgt_tokens, strict=True))
        if 0 < len(s) <= data.max_src_len and 0 < len(t) <= data.max_tgt_len
    ]
    if len(keep) < len(src_tokens):
        log.info("skipped %d empty or over-long training pairs", len(src_tokens) - len(keep))
    return [src_tokens[i] for i in keep], [tgt_tokens[i] for i in keep]


def build_training_data(
    text: ParallelText, cfg: TrainConfig, pipeline: TextPipeline | None = None
) -> tuple[TextPipeline, list[Example]]:
    """Tokenize the training text, build the vocabularies (unless ``pipeline`` -
    a resumed run's, from its checkpoint - brings them) and encode the pairs
    that are neither empty nor over-long."""
    if pipeline is not None:
        src_tok, tgt_tok = pipeline.src_tokenizer, pipeline.tgt_tokenizer
    else:
        src_tok, tgt_tok = build_tokenizers(cfg.tokenizer, cfg.data.src_lang, cfg.data.tgt_lang)
    src_tokens, tgt_tokens = _training_tokens(text, src_tok, tgt_tok, cfg.data)
    if pipeline is None:
        pipeline = TextPipeline(
            src_tokenizer=src_tok,
            tgt_tokenizer=tgt_tok,
            src_vocab=Vocab.build(src_tokens, cfg.vocab),
            tgt_vocab=Vocab.build(tgt_tokens, cfg.vocab),
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
