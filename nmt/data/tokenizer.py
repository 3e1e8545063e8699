"""Tokenizers: spaCy's rule-based ones, whitespace splitting, and characters.

``spacy`` uses the tokenizer of ``spacy.blank(lang)``: tokenization rules
only, so no trained pipeline has to be downloaded.  Whitespace tokens are
dropped, and a hyphen that spaCy splits out of a word ("t-shirt") is written
``@-@`` as Moses does, so that detokenizing restores the word.
``whitespace`` is ``str.split()``.  ``char`` keeps every character and writes
whitespace as ``▁`` so that the text can be rebuilt exactly.
``sentencepiece`` cuts text into the pieces of a subword model learned from
the training text (``nmt.data.subword``); the tokenizer carries the model.

``lower`` lowercases the text before it is split; ``reverse`` reverses the
token list (Sutskever et al. 2014, section 3.3: reversing the source helps
LSTM encoder-decoders) and is meant for the source side only.

:meth:`Tokenizer.detokenize` turns tokens back into text for BLEU: Moses'
detokenizer rules (sacremoses) for word tokens, a plain join for characters,
sentencepiece's own decoder for pieces.  It never reverses.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from nmt.config import ConfigError, TokenizerConfig, TokenizerKind
from nmt.data.subword import processor

logger = logging.getLogger(__name__)

SPACE_MARK = "\u2581"  # "▁", stands for a space in character tokens
HYPHEN_MARK = "@-@"  # a hyphen inside a word (Moses' aggressive-hyphen mark)
_WORD_CACHE_SIZE = 1_000_000  # words per language whose tokens are remembered

# lang -> spaCy Language / sacremoses MosesDetokenizer, built once per process
_SPACY: dict[str, Any] = {}
_DETOKENIZERS: dict[str, Any] = {}
_WORDS: dict[str, dict[str, tuple[str, ...]]] = {}  # lang -> word -> its tokens


def _spacy_nlp(lang: str) -> Any:
    """The blank (rules only) spaCy pipeline for ``lang``, cached."""
    if lang not in _SPACY:
        import spacy

        try:
            _SPACY[lang] = spacy.blank(lang)
        except ImportError as err:
            raise ConfigError(
                f"tokenizer.kind=spacy: spaCy has no language {lang!r}; "
                "use tokenizer.kind=whitespace or char"
            ) from err
    return _SPACY[lang]


def _moses_detokenizer(lang: str) -> Any:
    if lang not in _DETOKENIZERS:
        from sacremoses import MosesDetokenizer

        _DETOKENIZERS[lang] = MosesDetokenizer(lang=lang)
    return _DETOKENIZERS[lang]


def _doc_tokens(doc: Any) -> list[str]:
    """Non-space tokens of a spaCy Doc; a hyphen split out of a word becomes ``@-@``.

    spaCy cuts "t-shirt" into "t", "-", "shirt".  Writing the inner hyphen as
    Moses' ``@-@`` keeps the fact that it had no spaces around it, so that the
    detokenizer can glue the word back together ("t-shirt", not "t - shirt").
    """
    tokens: list[str] = []
    for tok in doc:
        if tok.is_space:
            continue
        inner = tok.i > 0 and not doc[tok.i - 1].whitespace_ and not tok.whitespace_
        if tok.text == "-" and inner and tok.i + 1 < len(doc) and not doc[tok.i + 1].is_space:
            tokens.append(HYPHEN_MARK)
        else:
            tokens.append(tok.text)
    return tokens


def _spacy_tokens(text: str, lang: str) -> list[str]:
    """:func:`_doc_tokens` of ``text``, word by word from a cache.

    spaCy cuts text at spaces and tokenizes each piece on its own (it caches
    pieces itself), so a line of single-space-separated words gives the
    concatenation of its words' tokens; and a hyphen is inner exactly when it
    is neither the first nor the last token of its word.  Building a spaCy Doc
    per line costs far more than looking the words up, which matters for
    millions of lines.  Any other spacing (runs of spaces, tabs, leading
    spaces) takes spaCy's whole-line path.
    """
    words = text.split()
    if " ".join(words) != text:
        return _doc_tokens(_spacy_nlp(lang).tokenizer(text))
    cache = _WORDS.setdefault(lang, {})
    if len(cache) > _WORD_CACHE_SIZE:
        cache.clear()
    tokens: list[str] = []
    for word in words:
        found = cache.get(word)
        if found is None:
            found = cache[word] = _word_tokens(_spacy_nlp(lang).tokenizer(word))
        tokens.extend(found)
    return tokens


def _word_tokens(doc: Any) -> tuple[str, ...]:
    """Tokens of a one-word Doc; an inner hyphen becomes ``@-@``."""
    last = len(doc) - 1
    return tuple(
        HYPHEN_MARK if tok.text == "-" and 0 < i < last else tok.text for i, tok in enumerate(doc)
    )


def _join_negations(tokens: list[str]) -> list[str]:
    """Glue spaCy's English ``n't`` back on ("are", "n't" -> "aren't"); Moses cannot."""
    joined: list[str] = []
    for tok in tokens:
        if joined and tok.lower() in ("n't", "n’t"):
            joined[-1] += tok
        else:
            joined.append(tok)
    return joined


def _char_tokens(text: str) -> list[str]:
    return [SPACE_MARK if ch.isspace() else ch for ch in text]


class Tokenizer:
    """Splits text of one language into tokens, and joins tokens back into text.

    ``model`` is the serialized sentencepiece model (``kind=sentencepiece`` only).
    """

    def __init__(
        self,
        kind: TokenizerKind | str,
        lang: str,
        lower: bool = False,
        reverse: bool = False,
        model: bytes | None = None,
    ) -> None:
        try:
            self.kind = TokenizerKind(kind)
        except ValueError as err:
            allowed = ", ".join(k.value for k in TokenizerKind)
            raise ConfigError(f"tokenizer.kind={kind!r}: choose one of {allowed}") from err
        self.lang = lang
        self.lower = lower
        self.reverse = reverse
        self.model = model
        self._sp: Any = None
        if self.kind == TokenizerKind.spacy:
            _spacy_nlp(lang)  # fail early on an unknown language
        if (self.kind == TokenizerKind.sentencepiece) != (model is not None):
            raise ValueError("a sentencepiece tokenizer needs its model; no other kind takes one")
        if model is not None:
            self._sp = processor(model)

    @property
    def pieces(self) -> list[str]:
        """The sentencepiece model's pieces, in id order (sentencepiece only)."""
        return [self._sp.id_to_piece(i) for i in range(self._sp.get_piece_size())]

    def __repr__(self) -> str:
        return (
            f"Tokenizer(kind={self.kind.value!r}, lang={self.lang!r}, "
            f"lower={self.lower}, reverse={self.reverse})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Tokenizer):
            return NotImplemented
        return self.to_dict() == other.to_dict()

    def __call__(self, text: str) -> list[str]:
        """Tokens of one line."""
        return self.tokenize_many([text])[0]

    def tokenize_many(
        self, texts: Iterable[str], sampling: tuple[float, int] | None = None
    ) -> list[list[str]]:
        """Tokens of many lines.

        ``sampling=(alpha, nbest_size)`` samples a segmentation of each line
        (sentencepiece only; for BPE, alpha is the dropout probability).
        """
        if self.lower:
            texts = [text.lower() for text in texts]
        if self.kind == TokenizerKind.sentencepiece:
            result = self._pieces(list(texts), sampling)
        elif self.kind == TokenizerKind.spacy:
            result = [_spacy_tokens(text, self.lang) for text in texts]
        elif self.kind == TokenizerKind.whitespace:
            result = [text.split() for text in texts]
        else:
            result = [_char_tokens(text) for text in texts]
        if self.reverse:
            for tokens in result:
                tokens.reverse()
        return result

    def _pieces(self, texts: list[str], sampling: tuple[float, int] | None) -> list[list[str]]:
        if sampling is None:
            return [list(p) for p in self._sp.encode(texts, out_type=str)]
        alpha, nbest = sampling
        # one thread: the samples are then a pure function of the sampler's seed
        pieces = self._sp.encode(
            texts, out_type=str, enable_sampling=True, alpha=alpha, nbest_size=nbest, num_threads=1
        )
        return [list(p) for p in pieces]

    def detokenize(self, tokens: list[str]) -> str:
        """Text from tokens in reading order (``reverse`` is not undone here)."""
        if self.kind == TokenizerKind.sentencepiece:
            return str(self._sp.decode_pieces(list(tokens)))
        if self.kind == TokenizerKind.char:
            return "".join(tokens).replace(SPACE_MARK, " ")
        if not tokens:
            return ""
        if self.lang == "en":
            tokens = _join_negations(tokens)
        # unescape=False: our tokens are raw text, never XML-escaped, so a literal
        # "&amp;" in the data must stay as it is.
        return _moses_detokenizer(self.lang).detokenize(list(tokens), unescape=False)

    def words(self, texts: list[str]) -> list[list[str]]:
        """Word tokens of text (for the tutorials' tokenized BLEU): this
        tokenizer's, but spaCy's words for pieces (white space where spaCy
        does not know the language)."""
        if self.kind != TokenizerKind.sentencepiece:
            return self.tokenize_many(texts)
        try:
            words = Tokenizer(TokenizerKind.spacy, self.lang, self.lower)
        except ConfigError:
            words = Tokenizer(TokenizerKind.whitespace, self.lang, self.lower)
        return words.tokenize_many(texts)

    def to_dict(self) -> dict[str, Any]:
        """Plain settings (JSON-able but for a sentencepiece model's ``bytes``,
        which ``torch.load(weights_only=True)`` accepts); :meth:`from_dict`
        rebuilds the tokenizer."""
        data: dict[str, Any] = {
            "kind": self.kind.value,
            "lang": self.lang,
            "lower": self.lower,
            "reverse": self.reverse,
        }
        if self.model is not None:
            data["model"] = self.model
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokenizer:
        model = data.get("model")
        return cls(
            kind=TokenizerKind(data["kind"]),
            lang=str(data["lang"]),
            lower=bool(data.get("lower", False)),
            reverse=bool(data.get("reverse", False)),
            model=None if model is None else bytes(model),
        )


def build_tokenizers(
    cfg: TokenizerConfig,
    src_lang: str,
    tgt_lang: str,
    models: tuple[bytes, bytes] | None = None,
) -> tuple[Tokenizer, Tokenizer]:
    """Source and target tokenizers; only the source may be reversed.
    ``models``: the source and target sentencepiece models (that kind only)."""
    src_model, tgt_model = models if models is not None else (None, None)
    src = Tokenizer(cfg.kind, src_lang, cfg.lower, cfg.reverse_source, model=src_model)
    tgt = Tokenizer(cfg.kind, tgt_lang, cfg.lower, reverse=False, model=tgt_model)
    logger.debug("tokenizers: %r, %r", src, tgt)
    return src, tgt
