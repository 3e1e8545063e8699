"""Tests for unknown-word replacement (decoding.replace_unk) in nmt.translation."""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch
from torch import Tensor, nn

import nmt.translation
from nmt.config import DecodingConfig, DecodingStrategy, TokenizerKind
from nmt.data.pipeline import TextPipeline
from nmt.data.tokenizer import Tokenizer
from nmt.data.vocab import Vocab
from nmt.models.encoder import EncoderOutput
from nmt.translation import output_tokens, translate_nbest, translate_texts

CPU = torch.device("cpu")
SRC_WORDS = ["das", "Haus", "ist", "rot"]
TGT_WORDS = ["the", "house", "is"]


def pipeline(reverse: bool = False) -> TextPipeline:
    return TextPipeline(
        src_tokenizer=Tokenizer(TokenizerKind.whitespace, "src", reverse=reverse),
        tgt_tokenizer=Tokenizer(TokenizerKind.whitespace, "tgt"),
        src_vocab=Vocab(SRC_WORDS),
        tgt_vocab=Vocab(TGT_WORDS),
        max_src_len=10,
    )


class Scripted(nn.Module):
    """Emits ``script`` (target ids) then <eos>, whatever the source; at step t
    it attends to source position ``looks[t]`` only (or has no attention)."""

    def __init__(self, script: list[int], looks: list[int], eos: int, attention: bool = True):
        super().__init__()
        self.script, self.looks, self.eos, self.attention = script, looks, eos, attention

    def encode(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        batch, length = src.shape
        mask = torch.arange(length)[None, :] < src_lengths[:, None]
        hidden = torch.zeros(1, batch, 1)
        return EncoderOutput(
            outputs=torch.zeros(batch, length, 1), mask=mask, hidden=hidden, cell=None
        )

    def init_state(self, enc: EncoderOutput, max_steps: int = 0) -> int:
        return 0  # the step: the same in every row

    def reorder_state(self, state: int, rows: Tensor) -> int:
        return state

    def decode_step(self, y: Tensor, state: int, enc: EncoderOutput):
        step = state
        token = self.script[step] if step < len(self.script) else self.eos
        logits = torch.full((y.size(0), 10), -10.0)
        logits[:, token] = 10.0
        look = min(self.looks[min(step, len(self.looks) - 1)], enc.mask.size(1) - 1)
        attn = torch.zeros(enc.mask.shape)
        attn[:, look] = 1.0
        return logits, step + 1, attn if self.attention else None


def decoding(replace_unk: bool = True, **options: object) -> DecodingConfig:
    return DecodingConfig(replace_unk=replace_unk, max_len=10, **options)  # type: ignore[arg-type]


def the_unk_is(pipe: TextPipeline, look: int, attention: bool = True) -> Scripted:
    vocab = pipe.tgt_vocab
    script = [vocab.stoi["the"], vocab.unk_idx, vocab.stoi["is"]]
    return Scripted(script, looks=[0, look, 2], eos=vocab.eos_idx, attention=attention)


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
def test_unk_becomes_the_most_attended_source_word(strategy: str) -> None:
    pipe = pipeline()
    model = the_unk_is(pipe, look=1)
    options = decoding(strategy=DecodingStrategy(strategy), beam_size=3)
    assert translate_texts(model, ["das Haus ist rot"], pipe, options, CPU) == ["the Haus is"]
    off = dataclasses.replace(options, replace_unk=False)
    assert translate_texts(model, ["das Haus ist rot"], pipe, off, CPU) == ["the <unk> is"]


def test_the_source_word_is_taken_in_the_order_the_model_read() -> None:
    line = "das Haus ist rot"
    assert translate_texts(the_unk_is(pipeline(), 3), [line], pipeline(), decoding(), CPU) == [
        "the rot is"
    ]
    reversed_pipe = pipeline(reverse=True)  # the model read "rot ist Haus das"
    model = the_unk_is(reversed_pipe, 3)
    assert translate_texts(model, [line], reversed_pipe, decoding(), CPU) == ["the das is"]


def test_words_unknown_to_the_source_vocabulary_are_copied_too() -> None:
    pipe = pipeline()
    found = translate_nbest(the_unk_is(pipe, 1), ["das Zebra ist", ""], pipe, decoding(), CPU)
    assert found[0][0].text == "the Zebra is"  # the source <unk> keeps its surface form
    assert found[0][0].tokens == ["the", "Zebra", "is"]
    assert found[0][0].src_tokens == ["das", "Zebra", "ist"]
    assert found[1][0].text == ""


def test_models_without_attention_keep_unk_and_warn_once(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(nmt.translation, "_warned", set())
    pipe = pipeline()
    model = the_unk_is(pipe, 1, attention=False)
    with caplog.at_level(logging.WARNING, logger="nmt"):
        for _ in range(2):
            out = translate_texts(model, ["das Haus", "ist rot"], pipe, decoding(), CPU)
            assert out == ["the <unk> is"] * 2
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "replace_unk" in warnings[0]


def test_output_tokens() -> None:
    vocab = Vocab(TGT_WORDS)
    ids = [vocab.stoi["the"], vocab.unk_idx, vocab.pad_idx, vocab.unk_idx]
    attention = torch.tensor([[1.0, 0, 0], [0.1, 0.2, 0.7], [1, 0, 0], [0.6, 0.3, 0.1]])
    src = ["a", "b", "c"]
    assert output_tokens(ids, vocab) == ["the", "<unk>", "<unk>"]
    assert output_tokens(ids, vocab, attention=attention, src_tokens=src) == ["the", "c", "a"]
