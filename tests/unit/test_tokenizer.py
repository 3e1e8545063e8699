"""Tests for nmt.data.tokenizer."""

from __future__ import annotations

import json

import pytest

from nmt.config import ConfigError, TokenizerConfig, TokenizerKind
from nmt.data.tokenizer import SPACE_MARK, Tokenizer, build_tokenizers


def words(text: str) -> list[str]:
    """Expected tokens, written as one space-separated string."""
    return text.split()


SENTENCES = {
    "de": (
        "Ein Mann, der einen Hut trägt, läuft die Straße entlang.",
        words("Ein Mann , der einen Hut trägt , läuft die Straße entlang ."),
    ),
    "en": (
        "Two dogs aren't playing in the snow.",
        ["Two", "dogs", "are", "n't", "playing", "in", "the", "snow", "."],
    ),
    "fr": ("Un homme fait du vélo.", ["Un", "homme", "fait", "du", "vélo", "."]),
    "cs": ("Muž jede na kole.", ["Muž", "jede", "na", "kole", "."]),
}


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_spacy_each_language(lang: str) -> None:
    text, expected = SENTENCES[lang]
    assert Tokenizer(TokenizerKind.spacy, lang)(text) == expected


def test_spacy_drops_whitespace_tokens() -> None:
    tokens = Tokenizer(TokenizerKind.spacy, "en")("  A  dog\t runs \n")
    assert tokens == ["A", "dog", "runs"]
    assert Tokenizer(TokenizerKind.spacy, "en")("") == []


def test_whitespace_kind() -> None:
    assert Tokenizer(TokenizerKind.whitespace, "en")(" a  b,c \t d ") == ["a", "b,c", "d"]


def test_char_kind() -> None:
    tok = Tokenizer(TokenizerKind.char, "en")
    assert tok("ab c") == ["a", "b", SPACE_MARK, "c"]
    assert tok.detokenize(tok("ab c")) == "ab c"


def test_lower_and_reverse() -> None:
    tok = Tokenizer(TokenizerKind.whitespace, "en", lower=True, reverse=True)
    assert tok("The Big DOG") == ["dog", "big", "the"]
    assert Tokenizer("spacy", "de", lower=True)("Der HUND.") == ["der", "hund", "."]


def test_tokenize_many_matches_call() -> None:
    tok = Tokenizer(TokenizerKind.spacy, "de", reverse=True)
    texts = [text for text, _ in SENTENCES.values()] + [""]
    assert tok.tokenize_many(texts) == [tok(text) for text in texts]
    assert tok.tokenize_many(iter(texts)) == [tok(text) for text in texts]


@pytest.mark.parametrize(
    ("lang", "text"),
    [
        ("en", "A man in a blue shirt is standing on a ladder."),
        ("en", 'The girl says "hello", then waves.'),
        ("en", "Two dogs aren't playing in the snow."),
        ("de", "Ein Mann, der einen Hut trägt, läuft die Straße entlang."),
        ("de", "Zwei Kinder (ein Junge und ein Mädchen) spielen."),
    ],
)
def test_detokenize_round_trip(lang: str, text: str) -> None:
    tok = Tokenizer(TokenizerKind.spacy, lang)
    assert tok.detokenize(tok(text)) == text


def test_detokenize_does_not_unreverse_or_unescape() -> None:
    tok = Tokenizer(TokenizerKind.whitespace, "en", reverse=True)
    assert tok.detokenize(["a", "b"]) == "a b"
    assert tok.detokenize(["Tom", "&amp;", "Jerry"]) == "Tom &amp; Jerry"
    assert tok.detokenize([]) == ""


# sentencepiece tokenizers carry a model: tests/unit/test_subword.py
@pytest.mark.parametrize("kind", [k for k in TokenizerKind if k != TokenizerKind.sentencepiece])
def test_to_dict_from_dict(kind: TokenizerKind) -> None:
    tok = Tokenizer(kind, "fr", lower=True, reverse=True)
    data = json.loads(json.dumps(tok.to_dict()))
    assert data == {"kind": kind.value, "lang": "fr", "lower": True, "reverse": True}
    again = Tokenizer.from_dict(data)
    assert again == tok
    assert again("Un Chat") == tok("Un Chat")


def test_unknown_language_or_kind() -> None:
    with pytest.raises(ConfigError, match="zz"):
        Tokenizer(TokenizerKind.spacy, "zz")
    with pytest.raises(ConfigError, match="bpe"):
        Tokenizer("bpe", "en")


def test_build_tokenizers_reverses_source_only() -> None:
    cfg = TokenizerConfig(kind=TokenizerKind.whitespace, lower=True, reverse_source=True)
    src, tgt = build_tokenizers(cfg, "de", "en")
    assert (src.lang, src.reverse, src.lower) == ("de", True, True)
    assert (tgt.lang, tgt.reverse, tgt.lower) == ("en", False, True)
    assert src("A B") == ["b", "a"] and tgt("A B") == ["a", "b"]


def test_inner_hyphen_marked_and_restored() -> None:
    tok = Tokenizer(TokenizerKind.spacy, "en")
    tokens = tok("A snow-covered hill - and a t-shirt.")
    assert tokens == words("A snow @-@ covered hill - and a t @-@ shirt .")
    assert tok.detokenize(tokens) == "A snow-covered hill - and a t-shirt."
