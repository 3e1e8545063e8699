"""Tests for nmt.translation: translate_texts over raw lines."""

from __future__ import annotations

import dataclasses
import logging
import random

import pytest
import torch

from nmt.config import DecodingConfig
from nmt.data.pipeline import TextPipeline
from nmt.data.tokenizer import Tokenizer
from nmt.models.seq2seq import Seq2Seq
from nmt.translation import translate_texts

CPU = torch.device("cpu")
DECODING = DecodingConfig(max_len=20, batch_size=8)


def translate(model: Seq2Seq, pipeline: TextPipeline, lines: list[str], **kwargs) -> list[str]:
    return translate_texts(model, lines, pipeline, kwargs.pop("decoding", DECODING), CPU, **kwargs)


# ------------------------------------------------------------- translate_texts


def test_translate_keeps_count_and_order(
    trained_tiny_model: Seq2Seq, tiny_pipeline: TextPipeline, synthetic_corpus
) -> None:
    lines = synthetic_corpus.lines["val"][0][:20]
    outputs = translate(trained_tiny_model, tiny_pipeline, lines)
    assert len(outputs) == len(lines)
    alone = [translate(trained_tiny_model, tiny_pipeline, [line])[0] for line in lines]
    assert outputs == alone
    order = random.Random(0).sample(range(len(lines)), len(lines))
    shuffled = translate(trained_tiny_model, tiny_pipeline, [lines[i] for i in order])
    assert shuffled == [outputs[i] for i in order]
    assert len(set(outputs)) > 1  # not one constant output


def test_batch_size_does_not_change_translations(
    trained_tiny_model: Seq2Seq, tiny_pipeline: TextPipeline, synthetic_corpus
) -> None:
    lines = synthetic_corpus.lines["val"][0][:20]
    one = translate(
        trained_tiny_model, tiny_pipeline, lines, decoding=DecodingConfig(max_len=20, batch_size=1)
    )
    many = translate(
        trained_tiny_model, tiny_pipeline, lines, decoding=DecodingConfig(max_len=20, batch_size=64)
    )
    assert one == many


def test_empty_and_blank_lines_give_empty_output(
    trained_tiny_model: Seq2Seq, tiny_pipeline: TextPipeline
) -> None:
    lines = ["s1 s2", "", "   ", "s3", "\t", ""]
    outputs = translate(trained_tiny_model, tiny_pipeline, lines)
    assert len(outputs) == len(lines)
    assert [outputs[i] for i in (1, 2, 4, 5)] == ["", "", "", ""]
    assert outputs[0] == translate(trained_tiny_model, tiny_pipeline, ["s1 s2"])[0]
    assert outputs[0] != ""  # a real line gets a real translation
    assert translate(trained_tiny_model, tiny_pipeline, []) == []
    assert translate(trained_tiny_model, tiny_pipeline, ["", ""]) == ["", ""]


def test_unknown_words_still_translate(
    trained_tiny_model: Seq2Seq, tiny_pipeline: TextPipeline
) -> None:
    outputs = translate(trained_tiny_model, tiny_pipeline, ["zzz qqq", "@@ ## !!"])
    assert len(outputs) == 2
    assert all("\n" not in o for o in outputs)


@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reversed-source"])
def test_over_long_lines_are_cut_with_a_warning(
    trained_tiny_model: Seq2Seq,
    tiny_pipeline: TextPipeline,
    caplog: pytest.LogCaptureFixture,
    reverse: bool,
) -> None:
    pipeline = dataclasses.replace(
        tiny_pipeline, src_tokenizer=Tokenizer("whitespace", "src", reverse=reverse)
    )
    limit = pipeline.max_src_len
    words = [f"s{i % 12}" for i in range(limit + 30)]
    long_line = " ".join(words)
    head = " ".join(words[:limit])  # what the model reads: the beginning
    lines = ["s1 s2", long_line, "s3", long_line, ""]
    with caplog.at_level(logging.WARNING, logger="nmt"):
        outputs = translate(trained_tiny_model, pipeline, lines)
    assert len(outputs) == len(lines)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(messages) == 1
    assert "line 2, 4" in messages[0] and str(limit) in messages[0]
    assert outputs[1] == outputs[3] == translate(trained_tiny_model, pipeline, [head])[0]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="nmt"):
        translate(trained_tiny_model, pipeline, ["s1 s2", head])
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_many_cut_lines_are_summarised(
    trained_tiny_model: Seq2Seq, tiny_pipeline: TextPipeline, caplog: pytest.LogCaptureFixture
) -> None:
    long_line = " ".join(["s1"] * (tiny_pipeline.max_src_len + 1))
    with caplog.at_level(logging.WARNING, logger="nmt"):
        outputs = translate(trained_tiny_model, tiny_pipeline, [long_line] * 15)
    assert len(outputs) == 15
    (message,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert message.startswith("15 line(s)")
    assert "1, 2, 3, 4, 5, 6, 7, 8, 9, 10 ..." in message
