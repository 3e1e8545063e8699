"""Tests for nmt.data.pipeline: TextPipeline and building it from training text."""

from __future__ import annotations

import dataclasses
import json

from nmt.config import (
    DataConfig,
    DataSource,
    TokenizerConfig,
    TokenizerKind,
    TrainConfig,
    VocabConfig,
)
from nmt.data.corpus import ParallelText
from nmt.data.pipeline import TextPipeline, build_training_data
from nmt.data.tokenizer import Tokenizer

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


def test_vocab_sizes_describe_the_vocabularies(tiny_pipeline: TextPipeline) -> None:
    sizes = tiny_pipeline.vocab_sizes
    assert (sizes.src, sizes.tgt) == (len(tiny_pipeline.src_vocab), len(tiny_pipeline.tgt_vocab))
    assert (sizes.src_pad, sizes.tgt_pad) == (
        tiny_pipeline.src_vocab.pad_idx,
        tiny_pipeline.tgt_vocab.pad_idx,
    )


# ------------------------------------------------------------- build_training_data


def train_config(max_src_len: int = 4, max_tgt_len: int = 5) -> TrainConfig:
    data = DataConfig(
        source=DataSource.files,
        train_src="train.src",
        train_tgt="train.tgt",
        val_src="val.src",
        val_tgt="val.tgt",
        max_src_len=max_src_len,
        max_tgt_len=max_tgt_len,
    )
    return TrainConfig(
        data=data,
        tokenizer=TokenizerConfig(kind=TokenizerKind.whitespace),
        vocab=VocabConfig(min_freq=1),
    )


def test_training_data_skips_empty_and_over_long_pairs() -> None:
    text = ParallelText(
        src=["a b", "", "a b c d e", "c", "a"],
        tgt=["x y", "x", "x", "y y y y y y", "z"],
        src_path="train.src",
        tgt_path="train.tgt",
    )
    pipeline, examples = build_training_data(text, train_config())
    pairs = [(pipeline.src_vocab.decode(s), pipeline.tgt_vocab.decode(t)) for s, t in examples]
    assert pairs == [(["a", "b"], ["x", "y"]), (["a"], ["z"])]
    assert "c" not in pipeline.src_vocab  # the vocabularies count kept pairs only
    assert "y" in pipeline.tgt_vocab and pipeline.max_src_len == 4
    assert pipeline.src_tokenizer.kind == TokenizerKind.whitespace


def test_resumed_training_data_keeps_the_checkpoints_vocabularies(
    tiny_pipeline: TextPipeline, synthetic_corpus
) -> None:
    src, tgt = synthetic_corpus.lines["train"]
    text = ParallelText(src=[*src[:5], "s1 zzz"], tgt=[*tgt[:5], "T1"], src_path="", tgt_path="")
    cfg = train_config(max_src_len=50, max_tgt_len=50)
    pipeline, examples = build_training_data(text, cfg, tiny_pipeline)
    assert pipeline is tiny_pipeline
    assert examples[:5] == tiny_pipeline.encode_pairs(src[:5], tgt[:5])
    assert examples[5][0] == [tiny_pipeline.src_vocab.stoi["s1"], tiny_pipeline.src_vocab.unk_idx]
