"""Tests for nmt.evaluation: teacher-forced NLL and evaluate's report."""

from __future__ import annotations

import json
import math

import pytest
import torch

from nmt.config import DecodingConfig
from nmt.data.pipeline import TextPipeline
from nmt.evaluation import evaluate, teacher_forced_nll
from nmt.metrics import score_translations
from nmt.models.seq2seq import Seq2Seq
from nmt.translation import translate_texts

CPU = torch.device("cpu")
DECODING = DecodingConfig(max_len=20, batch_size=8)


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
    assert report.hypotheses == translate_texts(
        trained_tiny_model, src, tiny_pipeline, DECODING, CPU
    )
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
