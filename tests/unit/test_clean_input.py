"""Bad inputs that used to pass silently: invisible characters, empty data
files, an unbounded beam, the checkpoint key's two forms."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from nmt.config import (
    ConfigError,
    DataConfig,
    DataSource,
    DecodingConfig,
    DecodingStrategy,
    TranslateConfig,
    checkpoint_list,
    to_dataclass,
)
from nmt.data.corpus import DataError, load_split
from nmt.data.pipeline import TextPipeline
from nmt.data.text import clean_line
from nmt.translation import cap_beam, translate_nbest

CPU = torch.device("cpu")


@pytest.mark.parametrize(
    "raw, clean",
    [
        ("\x00\x00", ""),
        ("\u200b\ufeff", ""),
        ("\ufffd", ""),
        ("Hund\u200bes", "Hundes"),
        ("a\u200db \u2060c\u00ad", "ab c"),  # joiner, word joiner, soft hyphen
        ("über Straße 😀", "über Straße 😀"),  # letters and symbols stay
        ("a\tb  c", "a\tb  c"),  # whitespace is the tokenizer's business
    ],
)
def test_clean_line(raw: str, clean: str) -> None:
    assert clean_line(raw) == clean


def test_zero_width_characters_do_not_make_unknown_words(tiny_pipeline: TextPipeline) -> None:
    word = tiny_pipeline.src_vocab.itos[10]
    ids, _ = tiny_pipeline.encode_sources([f"\ufeff{word[:1]}\u200b{word[1:]}\x00", "\u200b"])
    assert ids == [[tiny_pipeline.src_vocab.stoi[word]], []]


def test_junk_lines_translate_to_nothing(trained_tiny_model, tiny_pipeline: TextPipeline) -> None:
    lines = ["\x00", "\u200b\ufeff", "\ufffd", "s1 s2"]
    found = translate_nbest(trained_tiny_model, lines, tiny_pipeline, DecodingConfig(), CPU)
    assert [line[0].text for line in found[:3]] == ["", "", ""]
    assert found[3][0].text


def files_config(tmp_path: Path, **contents: str) -> DataConfig:
    paths = {}
    for split in ("train", "val"):
        for side in ("src", "tgt"):
            path = tmp_path / f"{split}.{side}"
            path.write_text(contents.get(f"{split}_{side}", "a b\nc\n"), encoding="utf-8")
            paths[f"{split}_{side}"] = str(path)
    return DataConfig(source=DataSource.files, **paths)


@pytest.mark.parametrize(
    "split, side, text, word",
    [
        ("train", "src", "", "is empty"),
        ("train", "tgt", "\n \n\t\n", "only blank"),
        ("val", "src", "", "is empty"),
        ("val", "tgt", "  \n", "only blank"),
    ],
)
def test_empty_data_files_are_refused_by_name(
    tmp_path: Path, split: str, side: str, text: str, word: str
) -> None:
    other = "src" if side == "tgt" else "tgt"
    lines = {f"{split}_{side}": text, f"{split}_{other}": "x\n" * text.count("\n")}
    cfg = files_config(tmp_path, **lines)
    with pytest.raises(DataError) as err:
        load_split(cfg, split)
    message = str(err.value)
    assert f"{split}.{side}" in message and word in message and "\n" not in message


def test_a_split_with_text_loads(tmp_path: Path) -> None:
    assert (
        len(load_split(files_config(tmp_path, train_src="\nx\n", train_tgt="y\n\n"), "train")) == 2
    )


def test_beam_size_above_its_maximum_is_refused() -> None:
    with pytest.raises(ConfigError, match="max_beam_size=64"):
        DecodingConfig(strategy=DecodingStrategy.beam, beam_size=20000)
    assert DecodingConfig(beam_size=100, max_beam_size=100).beam_size == 100


def test_beam_is_cut_to_the_vocabulary() -> None:
    wide = DecodingConfig(strategy=DecodingStrategy.beam, beam_size=50, n_best=40)
    assert (cap_beam(wide, 12).beam_size, cap_beam(wide, 12).n_best) == (12, 12)
    assert cap_beam(wide, 60) is wide


def test_a_beam_wider_than_the_vocabulary_still_translates(
    trained_tiny_model, tiny_pipeline: TextPipeline
) -> None:
    size = len(tiny_pipeline.tgt_vocab)
    wide = DecodingConfig(strategy=DecodingStrategy.beam, beam_size=size + 5, max_beam_size=999)
    exact = DecodingConfig(strategy=DecodingStrategy.beam, beam_size=size, max_beam_size=999)
    args = (["s1 s2 s3"], tiny_pipeline)
    got = translate_nbest(trained_tiny_model, *args, wide, CPU)[0][0]
    assert got.text == translate_nbest(trained_tiny_model, *args, exact, CPU)[0][0].text


@pytest.mark.parametrize(
    "value, paths",
    [("a.pt", ["a.pt"]), (["a.pt", "b.pt"], ["a.pt", "b.pt"])],
)
def test_checkpoint_key_takes_a_path_or_a_list(value: object, paths: list[str]) -> None:
    cfg = to_dataclass({"checkpoint": value}, TranslateConfig)
    assert checkpoint_list(cfg.checkpoint) == paths


@pytest.mark.parametrize("value", [[], [""], [1, "a.pt"], {"a": 1}])
def test_bad_checkpoint_keys_are_refused(value: object) -> None:
    with pytest.raises(ConfigError, match="checkpoint="):
        checkpoint_list(value)
