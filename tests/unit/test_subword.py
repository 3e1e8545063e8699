"""Tests for tokenizer=sentencepiece (nmt.data.subword and its use by the
pipeline): deterministic, cached models; checkpoints; no unknown input;
subword regularization; model.tie_embeddings=all."""

from __future__ import annotations

import dataclasses
import io
import random
from pathlib import Path

import numpy as np
import pytest
import torch

import nmt.data.subword as subword
from nmt.config import (
    ConfigError,
    DataConfig,
    DataSource,
    DecodingConfig,
    LuongConfig,
    SubwordModel,
    TokenizerConfig,
    TokenizerKind,
    TrainConfig,
    TrainerConfig,
    VocabConfig,
)
from nmt.data.batching import BucketBatchSampler, EpochBatches
from nmt.data.corpus import ParallelText
from nmt.data.pipeline import TextPipeline, build_training_data
from nmt.data.store import StoredPairs, prepare
from nmt.models.registry import VocabSizes, build_model
from nmt.translation import translate_nbest, translate_texts

CPU = torch.device("cpu")
DE = ["ein", "Mann", "Frau", "Hund", "läuft", "über", "die", "Straße", "mit", "einem", "Ball"]
EN = ["a", "man", "woman", "dog", "runs", "across", "the", "street", "with", "ball", "red"]
HARD = "Zwölf Xylophonistinnen kaufen 1234 Äpfel in Москва und 東京 🤖🍎 — naïve Café!"


def corpus(count: int = 300, seed: int = 0) -> ParallelText:
    rng = random.Random(seed)
    src, tgt = [], []
    for _ in range(count):
        n = rng.randint(3, 8)
        src.append(" ".join(rng.choice(DE) for _ in range(n)) + ".")
        tgt.append(" ".join(rng.choice(EN) for _ in range(n)) + ".")
    return ParallelText(src=src, tgt=tgt, src_path="train.de", tgt_path="train.en")


def config(tmp_path: Path, **tokenizer: object) -> TrainConfig:
    data = DataConfig(
        source=DataSource.files,
        src_lang="de",
        tgt_lang="en",
        train_src="train.de",
        train_tgt="train.en",
        val_src="val.de",
        val_tgt="val.en",
        cache_dir=str(tmp_path / "cache"),
    )
    options: dict[str, object] = {"kind": TokenizerKind.sentencepiece, "vocab_size": 300}
    options.update(tokenizer)
    return TrainConfig(
        data=data,
        tokenizer=TokenizerConfig(**options),  # type: ignore[arg-type]
        vocab=VocabConfig(),
        trainer=TrainerConfig(seed=7),
    )


def pipeline_for(tmp_path: Path, **tokenizer: object) -> TextPipeline:
    return build_training_data(corpus(), config(tmp_path, **tokenizer))[0]


# ------------------------------------------------------------------- the model


@pytest.mark.parametrize("model_type", ["unigram", "bpe"])
def test_same_text_and_settings_give_the_same_model(model_type: str) -> None:
    cfg = TokenizerConfig(
        kind=TokenizerKind.sentencepiece, vocab_size=300, model_type=SubwordModel(model_type)
    )
    lines = corpus().src + corpus().tgt
    first = subword.train_model(lines, cfg, VocabConfig(), len(lines))
    assert first == subword.train_model(lines, cfg, VocabConfig(), len(lines))  # byte-identical
    other_lines = corpus(seed=1).src
    other = subword.train_model(other_lines, cfg, VocabConfig(), len(other_lines))
    assert other != first


def test_models_are_cached_by_text_and_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = TokenizerConfig(kind=TokenizerKind.sentencepiece, vocab_size=300)
    lines = corpus().src
    model = subword.cached_model(lambda: lines, len(lines), cfg, VocabConfig(), tmp_path)
    assert len(list(tmp_path.glob("*.model"))) == 1

    def no_training(*_: object) -> bytes:
        raise AssertionError("trained again")

    monkeypatch.setattr(subword, "train_model", no_training)
    assert subword.cached_model(lambda: lines, len(lines), cfg, VocabConfig(), tmp_path) == model
    other = dataclasses.replace(cfg, vocab_size=301)
    with pytest.raises(AssertionError, match="trained again"):  # other settings: other key
        subword.cached_model(lambda: lines, len(lines), other, VocabConfig(), tmp_path)


def test_a_large_text_is_sampled_with_a_seed(tmp_path: Path) -> None:
    cfg = TokenizerConfig(kind=TokenizerKind.sentencepiece, vocab_size=300, input_sentence_size=200)
    lines = corpus().src + corpus(seed=2).src  # 600 sentences: more than 200
    first = subword.train_model(lines, cfg, VocabConfig(), len(lines))
    assert first == subword.train_model(lines, cfg, VocabConfig(), len(lines))
    whole = dataclasses.replace(cfg, input_sentence_size=10_000)
    assert first != subword.train_model(lines, whole, VocabConfig(), len(lines))
    # the sample size is part of the cache key only where it applies
    assert subword.cache_key(lines, cfg, VocabConfig(), 600) != subword.cache_key(
        lines, whole, VocabConfig(), 600
    )
    assert subword.cache_key(lines, cfg, VocabConfig(), 50) == subword.cache_key(
        lines, whole, VocabConfig(), 50
    )


def test_pieces_are_the_vocabulary_with_nmts_specials(tmp_path: Path) -> None:
    pipe = pipeline_for(tmp_path)
    vocab = pipe.src_vocab
    assert vocab.itos[:4] == ["<unk>", "<pad>", "<bos>", "<eos>"]
    assert vocab.itos == pipe.src_tokenizer.pieces  # piece id == vocabulary id
    assert pipe.src_vocab == pipe.tgt_vocab and pipe.vocab_sizes.joint  # joint by default
    split = pipeline_for(tmp_path, joint=False)
    assert split.src_vocab != split.tgt_vocab and not split.vocab_sizes.joint
    assert "▁Hund" in split.src_vocab and "▁Hund" not in split.tgt_vocab


def test_training_fails_with_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^tokenizer=sentencepiece: training failed: "):
        build_training_data(ParallelText([""], [""], "a", "b"), config(tmp_path))


# ----------------------------------------------------------- text <-> pieces


def test_hard_text_round_trips_without_unknown_ids(tmp_path: Path) -> None:
    for pipe in (pipeline_for(tmp_path), pipeline_for(tmp_path, model_type="bpe")):
        ids, _ = pipe.encode_sources([HARD, "ein Hund."])
        assert all(pipe.src_vocab.unk_idx not in line for line in ids)
        assert "<0xF0>" in pipe.src_tokenizer(HARD)  # the emoji as bytes
        assert [pipe.decode(line) for line in ids] == [HARD, "ein Hund."]


def test_lowercasing_happens_before_training_and_encoding(tmp_path: Path) -> None:
    pipe = pipeline_for(tmp_path, lower=True)
    assert "▁Hund" not in pipe.src_vocab and "▁hund" in pipe.src_vocab
    assert pipe.decode(pipe.encode_sources(["Ein HUND."])[0][0]) == "ein hund."


def test_checkpoint_round_trip_with_weights_only(tmp_path: Path) -> None:
    pipe = pipeline_for(tmp_path, reverse_source=True)
    buffer = io.BytesIO()
    torch.save({"config": {"x": 1}, **pipe.state()}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    assert isinstance(loaded["src_tokenizer"]["model"], bytes)
    restored = TextPipeline.from_state(loaded)
    assert restored.src_tokenizer == pipe.src_tokenizer and restored.tgt_vocab == pipe.tgt_vocab
    assert restored.encode_sources([HARD]) == pipe.encode_sources([HARD])
    assert restored.src_tokenizer.reverse


def unk_free_model(pipe: TextPipeline, unk_bias: float = -1e4) -> torch.nn.Module:
    """A tiny untrained Luong model whose output layer never (or, with a large
    bias, always) picks <unk>: training targets never hold <unk> (byte
    fallback), so a trained model does not emit it either."""
    cfg = LuongConfig(emb_dim=16, hidden_dim=16, num_layers=1, dropout=0.0)
    torch.manual_seed(0)
    model = build_model(cfg, pipe.vocab_sizes)
    with torch.no_grad():
        model.decoder.output.bias[pipe.tgt_vocab.unk_idx] = unk_bias
    return model.eval()


def test_hard_text_translates_without_unk(tmp_path: Path) -> None:
    pipe = pipeline_for(tmp_path)
    model = unk_free_model(pipe)
    for strategy, n_best in (("greedy", 1), ("beam", 2), ("sample", 2)):
        options = DecodingConfig(strategy=strategy, beam_size=3, n_best=n_best, max_len=12)  # type: ignore[arg-type]
        found = translate_nbest(model, [HARD, "🤖"], pipe, options, CPU, keep_attention=True)
        assert all(len(line) == n_best for line in found)
        for hyp in (h for line in found for h in line):
            assert "<unk>" not in hyp.text and "⁇" not in hyp.text
            assert hyp.attention is not None and hyp.attention.shape[1] == len(hyp.src_tokens)


def test_replace_unk_copies_source_pieces(tmp_path: Path) -> None:
    pipe = pipeline_for(tmp_path)
    model = unk_free_model(pipe, unk_bias=1e4)  # <unk> at every step
    options = DecodingConfig(max_len=3, replace_unk=True)
    (line,) = translate_nbest(model, ["Hund"], pipe, options, CPU)
    assert line[0].tokens and set(line[0].tokens) <= set(line[0].src_tokens)
    assert "⁇" not in line[0].text and "Hund" in line[0].text
    plain = translate_texts(
        model, ["Hund"], pipe, dataclasses.replace(options, replace_unk=False), CPU
    )
    assert "⁇" in plain[0]  # sentencepiece's own spelling of <unk>


# ------------------------------------------------------ subword regularization


def stored(tmp_path: Path, **options: object) -> tuple[TrainConfig, ParallelText]:
    """A store config over the corpus written to files in ``tmp_path``."""
    text = corpus()
    for name, lines in (
        ("train", text),
        ("val", ParallelText(text.src[:20], text.tgt[:20], "", "")),
    ):
        (tmp_path / f"{name}.de").write_text("\n".join(lines.src) + "\n", encoding="utf-8")
        (tmp_path / f"{name}.en").write_text("\n".join(lines.tgt) + "\n", encoding="utf-8")
    cfg = config(tmp_path, **options)
    cfg.data = dataclasses.replace(
        cfg.data,
        **{f"{s}_{side}": str(tmp_path / f"{s}.{lang}") for s in ("train", "val")
           for side, lang in (("src", "de"), ("tgt", "en"))},
        store_dir=str(tmp_path / "store"),
        subword_dir=str(tmp_path / "spm"),
    )  # fmt: skip
    return cfg, text


@pytest.mark.parametrize(
    "options", [{"sample_alpha": 0.1}, {"model_type": "bpe", "bpe_dropout": 0.2}]
)
def test_training_samples_per_batch_while_validation_does_not(
    tmp_path: Path, options: dict[str, object]
) -> None:
    cfg, text = stored(tmp_path, **options)
    prepared = prepare(cfg)
    pipe = prepared.pipeline
    pairs = StoredPairs(
        prepared.splits["train"], pipe, (0.1 if "sample_alpha" in options else 0.2, -1)
    )
    rows = np.arange(len(pairs))
    plain = pairs.take(rows)  # no seed: the one best segmentation, as stored
    first, again, other = pairs.take(rows, seed=1), pairs.take(rows, seed=1), pairs.take(rows, 2)
    assert first == again  # a batch's samples depend on its seed only
    assert first != other and first != plain
    assert [pipe.decode(t) for _, t in first] == text.tgt  # a segmentation of the same text
    assert plain == pipe.encode_pairs(text.src, text.tgt)
    val = prepared.splits["val"]
    assert list(zip(val["src_ids"], val["tgt_ids"])) == pipe.encode_pairs(
        text.src[:20], text.tgt[:20]
    )


def test_epoch_batches_sample_the_same_when_resumed(tmp_path: Path) -> None:
    cfg, _ = stored(tmp_path, sample_alpha=0.2)
    prepared = prepare(cfg)
    pairs = StoredPairs(prepared.splits["train"], prepared.pipeline, (0.2, -1))

    def source() -> EpochBatches:
        src, tgt = pairs.widths()
        buckets = BucketBatchSampler(src, 16, shuffle=True, seed=1, max_tokens=400, tgt_lengths=tgt)
        return EpochBatches(pairs, buckets, pad_idx=1, bos_idx=2, eos_idx=3)

    batches = list(source().batches(2))
    tail = list(source().batches(2, start=3))  # a run resumed mid-epoch sees the same batches
    assert all(torch.equal(a.src, b.src) for a, b in zip(batches[3:], tail, strict=True))
    assert not torch.equal(list(source().batches(3))[0].src, batches[0].src)


def test_regularization_options_are_checked() -> None:
    sp = TokenizerKind.sentencepiece
    with pytest.raises(ConfigError, match="sample_alpha needs model_type=unigram"):
        TokenizerConfig(kind=sp, model_type=SubwordModel.bpe, sample_alpha=0.1)
    with pytest.raises(ConfigError, match="bpe_dropout needs model_type=bpe"):
        TokenizerConfig(kind=sp, bpe_dropout=0.1)
    with pytest.raises(ConfigError, match="need tokenizer=sentencepiece"):
        TokenizerConfig(kind=TokenizerKind.spacy, sample_alpha=0.1)
    with pytest.raises(ConfigError, match="nbest_size"):
        TokenizerConfig(kind=sp, nbest_size=0)
    with pytest.raises(ConfigError, match="nbest_size=1: sample from the n >= 2 best"):
        TokenizerConfig(kind=sp, nbest_size=1)


# --------------------------------------------------------- tie_embeddings=all


def test_tie_all_shares_one_parameter(tmp_path: Path) -> None:
    pipe = pipeline_for(tmp_path)
    cfg = LuongConfig(emb_dim=16, hidden_dim=16, num_layers=1, tie_embeddings="all")
    model = build_model(cfg, pipe.vocab_sizes)
    matrix = model.decoder.embedding.weight
    assert model.encoder.embedding.weight is matrix and model.decoder.output.weight is matrix
    untied = build_model(dataclasses.replace(cfg, tie_embeddings=True), pipe.vocab_sizes)
    count = sum(p.numel() for p in model.parameters())
    assert count == sum(p.numel() for p in untied.parameters()) - matrix.numel()
    copy = build_model(cfg, pipe.vocab_sizes)
    copy.load_state_dict(model.state_dict())
    assert torch.equal(copy.encoder.embedding.weight, matrix)
    assert copy.encoder.embedding.weight is copy.decoder.output.weight


def test_tie_all_needs_one_vocabulary(tmp_path: Path) -> None:
    cfg = LuongConfig(emb_dim=16, hidden_dim=16, num_layers=1, tie_embeddings="all")
    sizes = pipeline_for(tmp_path, joint=False).vocab_sizes
    with pytest.raises(ConfigError, match=r"^model\.tie_embeddings=all needs one vocabulary"):
        build_model(cfg, sizes)
    with pytest.raises(ConfigError, match=r"^model\.tie_embeddings=all needs one vocabulary"):
        build_model(cfg, VocabSizes(src=50, tgt=50, src_pad=1, tgt_pad=1))


def test_tie_embeddings_values() -> None:
    assert LuongConfig(tie_embeddings="ALL", emb_dim=8, hidden_dim=8).tie_embeddings == "all"
    assert LuongConfig(tie_embeddings="true", emb_dim=8, hidden_dim=8).tie_embeddings is True
    assert LuongConfig(tie_embeddings=False).tie_embeddings is False
    with pytest.raises(
        ConfigError, match=r"model\.tie_embeddings='both': choose false, true or all"
    ):
        LuongConfig(tie_embeddings="both")
    with pytest.raises(ConfigError, match=r"model\.tie_embeddings=all .*emb_dim == "):
        LuongConfig(tie_embeddings="all", emb_dim=8, hidden_dim=16)
