"""Tests for nmt.evaluation: TextPipeline, translate_texts, evaluate."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import random

import pytest
import torch

from nmt.config import DecodingConfig
from nmt.data.tokenizer import Tokenizer
from nmt.evaluation import (
    TextPipeline,
    evaluate,
    teacher_forced_nll,
    translate_texts,
)
from nmt.metrics import score_translations
from nmt.models.seq2seq import Seq2Seq

CPU = torch.device("cpu")
DECODING = DecodingConfig(max_len=20, batch_size=8)


def translate(model: Seq2Seq, pipeline: TextPipeline, lines: list[str], **kwargs) -> list[str]:
    return translate_texts(model, lines, pipeline, kwargs.pop("decoding", DECODING), CPU, **kwargs)


# ---------------------------------------------------------------- TextPipeline


def test_pipeline_state_round_trip(tiny_pipeline: TextPipeline) -> None:
    state = tiny_pipeline.state()
    restored = TextPipeline.from_state(json.loads(json.dumps(state)))  # plain JSON data
    assert restored.src_vocab == tiny_pipeline.src_vocab
    assert restored.tgt_vocab == tiny_pipeline.tgt_vocab
    assert restored.src_tokenizer == tiny_pipeline.src_tokenizer
    assert restored.tgt_tokenizer == tiny_pipeline.tgt_tokenizer
    assert restored.max_src_len == tiny_pipeline.max_src_len
    assert restored.state() == state
    lines = ["s1 s2 s3", "", "s4 unknown s5"]
    assert restored.encode_sources(lines) == tiny_pipeline.encode_sources(lines)


def test_pipeline_round_trip_keeps_reversal_and_case(tiny_pipeline: TextPipeline) -> None:
    pipeline = dataclasses.replace(
        tiny_pipeline,
        src_tokenizer=Tokenizer("whitespace", "src", lower=True, reverse=True),
        max_src_len=7,
    )
    restored = TextPipeline.from_state(pipeline.state())
    assert restored.src_tokenizer.reverse and restored.src_tokenizer.lower
    assert restored.max_src_len == 7
    assert restored.encode_sources(["S1 s2 S3"]) == pipeline.encode_sources(["S1 s2 S3"])


def test_encode_sources_reports_cut_lines(tiny_pipeline: TextPipeline) -> None:
    limit = tiny_pipeline.max_src_len
    long_line = " ".join(f"s{i % 12}" for i in range(limit + 5))
    ids, cut = tiny_pipeline.encode_sources(["s1", long_line, "s2 s3", long_line])
    assert cut == [2, 4]
    assert [len(x) for x in ids] == [1, limit, 2, limit]


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


# --------------------------------------------------------------------- evaluate


def test_teacher_forced_nll_ignores_batching(
    trained_tiny_model: Seq2Seq, tiny_pipeline: TextPipeline, tiny_examples
) -> None:
    examples = tiny_examples[:40]
    small, tokens_small = teacher_forced_nll(trained_tiny_model, examples, tiny_pipeline, CPU, 3)
    big, tokens_big = teacher_forced_nll(trained_tiny_model, examples, tiny_pipeline, CPU, 128)
    assert tokens_small == tokens_big == sum(len(t) + 1 for _, t in examples)
    assert small == pytest.approx(big, rel=1e-5)


def test_evaluate_report(
    trained_tiny_model: Seq2Seq, tiny_pipeline: TextPipeline, synthetic_corpus
) -> None:
    src, ref = synthetic_corpus.lines["val"]
    report = evaluate(trained_tiny_model, tiny_pipeline, src, ref, DECODING, CPU)
    nll, tokens = teacher_forced_nll(
        trained_tiny_model, tiny_pipeline.encode_pairs(src, ref), tiny_pipeline, CPU
    )
    assert report.num_tokens == tokens
    assert report.loss == pytest.approx(nll / tokens)
    assert report.ppl == pytest.approx(math.exp(report.loss))
    assert report.num_sentences == len(src) == len(report.hypotheses)
    assert report.hypotheses == translate(trained_tiny_model, tiny_pipeline, src)
    scores = score_translations(report.hypotheses, ref)
    assert (report.bleu, report.chrf, report.signature) == (
        scores.bleu,
        scores.chrf,
        scores.bleu_signature,
    )
    summary = report.summary()
    assert "hypotheses" not in summary
    json.dumps(summary)  # JSON-able


def test_evaluate_with_perfect_translations(
    trained_tiny_model: Seq2Seq, tiny_pipeline: TextPipeline, synthetic_corpus
) -> None:
    src, ref = synthetic_corpus.lines["val"]
    lookup = dict(zip(src, ref, strict=True))

    def oracle(model, lines, pipeline, decoding, device, progress=False):
        return [lookup[line] for line in lines]

    report = evaluate(trained_tiny_model, tiny_pipeline, src, ref, DECODING, CPU, decode_fn=oracle)
    assert report.bleu == pytest.approx(100.0)
    assert report.chrf == pytest.approx(100.0)
    assert report.bleu_tok_lc == pytest.approx(100.0)


def test_evaluate_max_decode(
    trained_tiny_model: Seq2Seq, tiny_pipeline: TextPipeline, synthetic_corpus
) -> None:
    src, ref = synthetic_corpus.lines["val"]
    full = evaluate(trained_tiny_model, tiny_pipeline, src, ref, DECODING, CPU)
    part = evaluate(trained_tiny_model, tiny_pipeline, src, ref, DECODING, CPU, max_decode=7)
    assert part.num_sentences == len(part.hypotheses) == 7
    assert part.hypotheses == full.hypotheses[:7]
    assert part.loss == pytest.approx(full.loss)  # the loss still uses every line
    none = evaluate(trained_tiny_model, tiny_pipeline, src, ref, DECODING, CPU, max_decode=0)
    assert none.num_sentences == 0 and none.hypotheses == []
