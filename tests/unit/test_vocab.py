"""Tests for nmt.data.vocab."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nmt.config import VocabConfig
from nmt.data.vocab import Vocab

SENTS = [["b", "a", "c"], ["a", "b"], ["a", "d"], ["c", "e", "e"]]
# counts: a=3, b=2, c=2, e=2, d=1


def test_default_specials_first() -> None:
    vocab = Vocab.build(SENTS, VocabConfig(min_freq=1))
    assert vocab.itos[:4] == ["<unk>", "<pad>", "<bos>", "<eos>"]
    assert (vocab.unk_idx, vocab.pad_idx, vocab.bos_idx, vocab.eos_idx) == (0, 1, 2, 3)


def test_order_by_count_then_token() -> None:
    vocab = Vocab.build(SENTS, VocabConfig(min_freq=1))
    assert vocab.itos[4:] == ["a", "b", "c", "e", "d"]
    again = Vocab.build(list(reversed(SENTS)), VocabConfig(min_freq=1))
    assert again.itos == vocab.itos


def test_min_freq() -> None:
    vocab = Vocab.build(SENTS, VocabConfig(min_freq=2))
    assert vocab.itos[4:] == ["a", "b", "c", "e"]
    assert "d" not in vocab


def test_max_size_excludes_specials() -> None:
    vocab = Vocab.build(SENTS, VocabConfig(min_freq=1, max_size=2))
    assert len(vocab) == 6
    assert vocab.itos[4:] == ["a", "b"]


def test_custom_specials_not_duplicated() -> None:
    cfg = VocabConfig(min_freq=1, unk="[U]", pad="[P]", bos="[B]", eos="[E]")
    vocab = Vocab.build([["[E]", "x", "[U]", "x"]], cfg)
    assert vocab.itos == ["[U]", "[P]", "[B]", "[E]", "x"]
    assert vocab.encode(["x", "y"], add_bos=True) == [2, 4, 0, 3]


def test_constructor_puts_specials_first() -> None:
    vocab = Vocab(["x", "<eos>", "y"], "<unk>", "<pad>", "<bos>", "<eos>")
    assert vocab.itos == ["<unk>", "<pad>", "<bos>", "<eos>", "x", "y"]
    assert vocab.stoi["y"] == 5
    with pytest.raises(ValueError, match="twice"):
        Vocab(["x", "x"], "<unk>", "<pad>", "<bos>", "<eos>")


def test_encode_decode() -> None:
    vocab = Vocab.build(SENTS, VocabConfig(min_freq=2))
    ids = vocab.encode(["a", "zzz", "e"])
    assert ids == [vocab.stoi["a"], vocab.unk_idx, vocab.stoi["e"], vocab.eos_idx]
    assert vocab.encode(["a"], add_bos=True, add_eos=False) == [vocab.bos_idx, vocab.stoi["a"]]
    assert vocab.decode(ids) == ["a", "<unk>", "e"]
    padded = [vocab.bos_idx, *ids, vocab.pad_idx, vocab.stoi["b"]]
    assert vocab.decode(padded) == ["a", "<unk>", "e"]  # stops at the first eos
    assert vocab.decode([vocab.stoi["b"], vocab.pad_idx, vocab.stoi["c"]]) == ["b", "c"]


def test_decode_accepts_tensor_like_ints() -> None:
    torch = pytest.importorskip("torch")
    vocab = Vocab.build(SENTS, VocabConfig(min_freq=1))
    assert vocab.decode(torch.tensor(vocab.encode(["a", "b"]))) == ["a", "b"]


def test_to_dict_from_dict() -> None:
    cfg = VocabConfig(min_freq=1, unk="?", pad="_", bos="^", eos="$")
    vocab = Vocab.build(SENTS, cfg)
    data = json.loads(json.dumps(vocab.to_dict()))
    assert data["specials"] == {"unk": "?", "pad": "_", "bos": "^", "eos": "$"}
    again = Vocab.from_dict(data)
    assert again == vocab and again.stoi == vocab.stoi and again.eos == "$"
    with pytest.raises(ValueError, match="specials first"):
        Vocab.from_dict({"itos": ["a", "?", "_", "^", "$"], "specials": data["specials"]})


tokens = st.text(alphabet="abcdefgh", min_size=1, max_size=3)


@given(st.lists(st.lists(tokens, max_size=8), max_size=10), st.integers(1, 3))
def test_round_trip_property(sentences: list[list[str]], min_freq: int) -> None:
    vocab = Vocab.build(sentences, VocabConfig(min_freq=min_freq))
    for sent in sentences:
        ids = vocab.encode(sent, add_bos=True)
        assert ids[0] == vocab.bos_idx and ids[-1] == vocab.eos_idx
        expected = [tok if tok in vocab else vocab.unk for tok in sent]
        assert vocab.decode(ids + [vocab.pad_idx]) == expected
    assert Vocab.from_dict(vocab.to_dict()) == vocab
    assert len(set(vocab.itos)) == len(vocab)
