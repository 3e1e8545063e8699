"""The prepared-data store (nmt.data.store) and its sources (nmt.data.sources):
the key, reuse, damage, locking, worker processes, Hugging Face sources,
compact ids and the limits."""

from __future__ import annotations

import dataclasses
import json
import logging
import multiprocessing
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.distributed as dist

from nmt.config import (
    DataConfig,
    DataSource,
    TokenizerConfig,
    TokenizerKind,
    TrainConfig,
    VocabConfig,
)
from nmt.data import store
from nmt.data.corpus import DataError, read_parallel
from nmt.data.pipeline import build_training_data
from nmt.data.store import StoredPairs, prepare

WORDS_DE = "ein Hund Katze läuft schnell über die Wiese Mann Frau rot blau t-shirt".split()  # noqa: SIM905
WORDS_EN = "a dog cat runs fast over the meadow man woman red blue t-shirt".split()  # noqa: SIM905


def write_corpus(folder: Path, count: int = 300, seed: int = 0, name: str = "train") -> None:
    rng = random.Random(seed)
    src, tgt = [], []
    for _ in range(count):
        picks = [rng.randrange(len(WORDS_DE)) for _ in range(rng.randint(2, 9))]
        src.append(" ".join(WORDS_DE[i] for i in picks) + " .")
        tgt.append(" ".join(WORDS_EN[i] for i in picks) + " .")
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.de").write_text("\n".join(src) + "\n", encoding="utf-8")
    (folder / f"{name}.en").write_text("\n".join(tgt) + "\n", encoding="utf-8")


def files_config(folder: Path, **data: Any) -> TrainConfig:
    if not (folder / "train.de").exists():
        write_corpus(folder)
        write_corpus(folder, 40, seed=1, name="val")
    options: dict[str, Any] = {
        "source": DataSource.files,
        "src_lang": "de",
        "tgt_lang": "en",
        "train_src": str(folder / "train.de"),
        "train_tgt": str(folder / "train.en"),
        "val_src": str(folder / "val.de"),
        "val_tgt": str(folder / "val.en"),
        "store_dir": str(folder / "store"),
        "subword_dir": str(folder / "spm"),
    }
    options.update(data)
    return TrainConfig(data=DataConfig(**options), tokenizer=TokenizerConfig(), vocab=VocabConfig())


def all_pairs(prepared: store.PreparedData) -> list[tuple[list[int], list[int]]]:
    pairs = StoredPairs(prepared.splits["train"], prepared.pipeline)
    return [(list(s), list(t)) for s, t in pairs.take(np.arange(len(pairs)))]


# ------------------------------------------------------------------ the key


def test_the_store_holds_what_the_in_memory_pipeline_gives(tmp_path: Path) -> None:
    cfg = files_config(tmp_path)
    prepared = prepare(cfg)
    pipeline, examples = build_training_data(
        read_parallel(cfg.data.train_src, cfg.data.train_tgt), cfg
    )
    assert prepared.pipeline.state() == pipeline.state()
    assert all_pairs(prepared) == examples
    assert prepared.splits["train"].features["src_ids"].feature.dtype == "uint16"


@pytest.mark.parametrize(
    "change",
    [
        {"tokenizer": TokenizerConfig(lower=True)},
        {"vocab": VocabConfig(min_freq=1)},
        {"data_keys": {"max_src_len": 5}},
        {"data_keys": {"max_train_examples": 10}},
        {"text": True},
    ],
)
def test_a_changed_setting_or_text_gets_another_store(
    tmp_path: Path, change: dict[str, Any]
) -> None:
    cfg = files_config(tmp_path)
    key = store.store_key(store.key_inputs(cfg))
    if "text" in change:
        with open(cfg.data.train_src, "a", encoding="utf-8") as handle:
            handle.write("Hund .\n")
        with open(cfg.data.train_tgt, "a", encoding="utf-8") as handle:
            handle.write("dog .\n")
    other = dataclasses.replace(
        cfg,
        data=dataclasses.replace(cfg.data, **change.get("data_keys", {})),
        tokenizer=change.get("tokenizer", cfg.tokenizer),
        vocab=change.get("vocab", cfg.vocab),
    )
    assert store.store_key(store.key_inputs(other)) != key


def test_where_and_how_fast_do_not_change_the_key(tmp_path: Path) -> None:
    cfg = files_config(tmp_path)
    key = store.store_key(store.key_inputs(cfg))
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("train.de", "train.en", "val.de", "val.en"):
        (moved / name).write_bytes((tmp_path / name).read_bytes())
    other = files_config(moved, prepare_workers=3, store_dir=str(tmp_path / "s2"))
    assert store.store_key(store.key_inputs(other)) == key


def test_a_second_run_opens_the_store_without_building(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = files_config(tmp_path)
    first = prepare(cfg)

    def no_build(*_: object) -> None:
        raise AssertionError("built again")

    monkeypatch.setattr(store._Build, "run", no_build)
    again = prepare(cfg)
    assert again.path == first.path and all_pairs(again) == all_pairs(first)


# ------------------------------------------------------------------ damage


@pytest.mark.parametrize("damage", ["flip", "truncate", "meta", "pipeline"])
def test_a_damaged_store_is_named_and_prepared_again(
    tmp_path: Path, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = files_config(tmp_path)
    good = prepare(cfg)
    expected = all_pairs(good)
    arrow = next((good.path / "train").glob("*.arrow"))
    if damage == "flip":
        data = bytearray(arrow.read_bytes())
        data[len(data) // 2] ^= 0xFF
        arrow.write_bytes(bytes(data))
    elif damage == "truncate":
        arrow.write_bytes(arrow.read_bytes()[:-100])
    elif damage == "meta":
        (good.path / "meta.json").write_text("{", encoding="utf-8")
    else:
        (good.path / "pipeline.pt").unlink()
    with caplog.at_level(logging.WARNING, logger="nmt.data.store"):
        again = prepare(cfg)
    warnings = [r.getMessage() for r in caplog.records if "damaged" in r.getMessage()]
    assert len(warnings) == 1 and str(good.path) in warnings[0] and "\n" not in warnings[0]
    assert all_pairs(again) == expected


def test_a_killed_build_leaves_no_store_and_its_leftovers_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = files_config(tmp_path)
    real = store._Build.run

    def killed(self: Any, inputs: Any) -> None:
        (self.tmp / "half").write_text("x")
        raise KeyboardInterrupt

    monkeypatch.setattr(store._Build, "run", killed)
    with pytest.raises(KeyboardInterrupt):
        prepare(cfg)
    root = Path(cfg.data.store_dir)
    assert not [p for p in root.iterdir() if p.is_dir()]  # nothing half-written in place
    (root / ".leftover.x").mkdir()
    monkeypatch.setattr(store._Build, "run", real)
    prepared = prepare(cfg)
    assert [p.name for p in root.iterdir() if p.is_dir()] == [prepared.path.name] or (
        root / ".leftover.x"
    ).exists()


# ------------------------------------------------------------------ processes


def _prepare_in_child(cfg: TrainConfig, queue: Any) -> None:
    prepared = prepare(cfg)
    queue.put((str(prepared.path), prepared.meta["seconds"], os.getpid()))


def test_two_processes_preparing_at_once_build_one_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = files_config(tmp_path)
    builds = tmp_path / "builds"
    real = store._Build.run

    def counted(self: Any, inputs: Any) -> None:
        with open(builds, "a") as handle:
            handle.write("x")
        real(self, inputs)

    monkeypatch.setattr(store._Build, "run", counted)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    children = [context.Process(target=_prepare_in_child, args=(cfg, queue)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(120)
        assert child.exitcode == 0
    found = [queue.get(timeout=5) for _ in children]
    assert found[0][:2] == found[1][:2]  # the same store, made once
    assert builds.read_text() == "x"
    root = Path(cfg.data.store_dir)
    assert [p.name for p in root.iterdir() if p.is_dir()] == [Path(found[0][0]).name]


def test_worker_processes_give_the_same_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "MIN_ROWS_PER_WORKER", 50)
    write_corpus(tmp_path, 900)
    write_corpus(tmp_path, 40, seed=1, name="val")
    one = prepare(files_config(tmp_path, prepare_workers=1, store_dir=str(tmp_path / "a")))
    two = prepare(files_config(tmp_path, prepare_workers=2, store_dir=str(tmp_path / "b")))
    assert store._workers(files_config(tmp_path, prepare_workers=2).data, 900) == 2
    assert one.pipeline.state() == two.pipeline.state()
    assert all_pairs(one) == all_pairs(two)
    assert len(list((two.path / "train").glob("*.arrow"))) >= 1


def _rank_main(rank: int, cfg: TrainConfig, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    prepared = prepare(cfg)
    pairs = StoredPairs(prepared.splits["train"], prepared.pipeline)
    pairs.take(np.arange(len(pairs)))  # touch every row: the file is mapped
    maps = Path("/proc/self/maps").read_text()
    mapped = sorted({line.split()[-1] for line in maps.splitlines() if str(prepared.path) in line})
    Path(out, f"rank{rank}.json").write_text(
        json.dumps({"path": str(prepared.path), "maps": mapped})
    )
    dist.barrier()
    dist.destroy_process_group()


def test_ranks_map_the_same_store_files(tmp_path: Path) -> None:
    import socket

    cfg = files_config(tmp_path)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    torch.multiprocessing.start_processes(
        _rank_main, args=(cfg, port, str(tmp_path)), nprocs=2, start_method="fork"
    )
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["path"] == ranks[1]["path"]
    assert ranks[0]["maps"] and ranks[0]["maps"] == ranks[1]["maps"]  # one copy in the page cache
    assert all(name.endswith(".arrow") for name in ranks[0]["maps"])


# ------------------------------------------------------------------ sources


def test_unequal_line_counts_stop_with_one_line_naming_both_files(tmp_path: Path) -> None:
    cfg = files_config(tmp_path)
    with open(cfg.data.train_tgt, "a", encoding="utf-8") as handle:
        handle.write("one more .\n")
    with pytest.raises(DataError) as err:
        prepare(cfg)
    message = str(err.value)
    assert "src has 300 lines but tgt has 301" in message
    assert cfg.data.train_src in message and cfg.data.train_tgt in message and "\n" not in message


def hf_config(tmp_path: Path, **data: Any) -> TrainConfig:
    base = files_config(tmp_path)
    options = {"source": DataSource.hf, "src_lang": "de", "tgt_lang": "en"}
    options.update(data)
    return dataclasses.replace(base, data=dataclasses.replace(base.data, **options))


def _texts(tmp_path: Path, split: str) -> tuple[list[str], list[str]]:
    text = read_parallel(tmp_path / f"{split}.de", tmp_path / f"{split}.en")
    return text.src, text.tgt


@pytest.mark.parametrize("layout", ["parquet", "json_records", "saved", "saved_columns"])
def test_hugging_face_sources_give_the_same_store(tmp_path: Path, layout: str) -> None:
    import datasets

    files = prepare(files_config(tmp_path))
    splits = {"train": _texts(tmp_path, "train"), "validation": _texts(tmp_path, "val")}
    records = {
        name: datasets.Dataset.from_dict(
            {"translation": [{"de": s, "en": t} for s, t in zip(*texts)]}
        )
        for name, texts in splits.items()
    }
    columns = {
        name: datasets.Dataset.from_dict({"de_text": texts[0], "en_text": texts[1]})
        for name, texts in splits.items()
    }
    if layout == "parquet":
        for name, data in columns.items():
            data.to_parquet(str(tmp_path / f"{name}.parquet"))
        cfg = hf_config(
            tmp_path,
            hf_path="parquet",
            hf_data_files={n: str(tmp_path / f"{n}.parquet") for n in splits},
            hf_src_column="de_text",
            hf_tgt_column="en_text",
        )
    elif layout == "json_records":
        for name, data in records.items():
            data.to_json(str(tmp_path / f"{name}.jsonl"))
        cfg = hf_config(
            tmp_path,
            hf_path="json",
            hf_data_files={n: str(tmp_path / f"{n}.jsonl") for n in splits},
        )
    else:
        chosen = records if layout == "saved" else columns
        datasets.DatasetDict(chosen).save_to_disk(str(tmp_path / "saved"))
        extra = (
            {} if layout == "saved" else {"hf_src_column": "de_text", "hf_tgt_column": "en_text"}
        )
        cfg = hf_config(tmp_path, hf_path=str(tmp_path / "saved"), **extra)
    prepared = prepare(cfg)
    assert prepared.pipeline.state() == files.pipeline.state()
    assert all_pairs(prepared) == all_pairs(files)
    assert list(prepared.splits["val"]["src"]) == splits["validation"][0]


def test_hugging_face_errors_name_the_key(tmp_path: Path) -> None:
    import datasets

    datasets.DatasetDict(
        {"train": datasets.Dataset.from_dict({"translation": [{"de": "a", "fr": "b"}]})}
    ).save_to_disk(str(tmp_path / "saved"))
    with pytest.raises(DataError, match=r"has no split 'validation' \(data.hf_splits.val\)"):
        prepare(hf_config(tmp_path, hf_path=str(tmp_path / "saved")))
    with pytest.raises(DataError, match="data.hf_column=translation: a row has no 'en' text"):
        prepare(
            hf_config(
                tmp_path,
                hf_path=str(tmp_path / "saved"),
                hf_splits={"train": "train", "val": "train"},
            )
        )
    with pytest.raises(DataError, match="data.hf_src_column=nope: no such column"):
        prepare(
            hf_config(
                tmp_path,
                hf_path=str(tmp_path / "saved"),
                hf_splits={"train": "train", "val": "train"},
                hf_src_column="nope",
                hf_tgt_column="translation",
            )
        )
    with pytest.raises(DataError, match=r"^data.hf_path=.*missing.*cannot load"):
        prepare(hf_config(tmp_path, hf_path=str(tmp_path / "missing")))


# ------------------------------------------------------------------ ids and limits


def test_ids_are_int32_when_the_vocabulary_is_larger_than_uint16(tmp_path: Path) -> None:
    words = [f"w{i}" for i in range(70_000)]
    lines = [" ".join(words[i : i + 20]) for i in range(0, len(words), 20)]
    for name in ("train", "val"):
        for lang in ("de", "en"):
            (tmp_path / f"{name}.{lang}").write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = files_config(tmp_path)
    cfg = dataclasses.replace(
        cfg, tokenizer=TokenizerConfig(kind=TokenizerKind.whitespace), vocab=VocabConfig(min_freq=1)
    )
    prepared = prepare(cfg)
    assert prepared.splits["train"].features["src_ids"].feature.dtype == "int32"
    assert max(max(s) for s, _ in all_pairs(prepared)) >= 2**16


def test_skipped_pairs_are_counted_by_reason(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    with open(tmp_path / "train.de", "a", encoding="utf-8") as handle:
        handle.write("\nHund\n")
    with open(tmp_path / "train.en", "a", encoding="utf-8") as handle:
        handle.write("dog\n\n")
    write_corpus(tmp_path, 40, seed=1, name="val")
    prepared = prepare(files_config(tmp_path, max_src_len=6))
    lengths = [len(s.split()) for s in (tmp_path / "train.de").read_text().splitlines()[:300]]
    over = sum(n > 6 for n in lengths)
    assert prepared.skipped == {"empty": 2, "over_long": over}
    assert len(prepared.splits["train"]) == 300 - over
    assert max(len(s) for s, _ in all_pairs(prepared)) <= 6


def test_an_empty_vocabulary_stops_naming_the_key(tmp_path: Path) -> None:
    cfg = dataclasses.replace(files_config(tmp_path), vocab=VocabConfig(min_freq=1_000_000))
    with pytest.raises(DataError, match=r"only the 4 special tokens.*vocab.min_freq=1000000"):
        prepare(cfg)


def test_no_pair_left_after_the_limits_names_the_keys(tmp_path: Path) -> None:
    write_corpus(tmp_path)
    write_corpus(tmp_path, 40, seed=1, name="val")
    lines = (tmp_path / "train.de").read_text().splitlines()
    (tmp_path / "train.de").write_text(
        "\n".join(line + " x x x x x x x x x x" for line in lines) + "\n"
    )
    with pytest.raises(DataError, match=r"no training pair is left.*data.max_src_len=5"):
        prepare(files_config(tmp_path, max_src_len=5))


@pytest.mark.parametrize("sampling", [None, (0.2, -1)])
def test_dataloader_workers_give_the_same_batches(
    tmp_path: Path, sampling: tuple[float, int] | None
) -> None:
    from nmt.data.batching import BucketBatchSampler, EpochBatches

    cfg = files_config(tmp_path)
    if sampling:
        tokenizer = TokenizerConfig(
            kind=TokenizerKind.sentencepiece, vocab_size=300, sample_alpha=0.2
        )
        cfg = dataclasses.replace(cfg, tokenizer=tokenizer)
    prepared = prepare(cfg)
    pairs = StoredPairs(prepared.splits["train"], prepared.pipeline, sampling)

    def batches(workers: int) -> list[torch.Tensor]:
        src, tgt = pairs.widths()
        sampler = BucketBatchSampler(src, 16, shuffle=True, seed=3, max_tokens=300, tgt_lengths=tgt)
        source = EpochBatches(pairs, sampler, pad_idx=1, bos_idx=2, eos_idx=3, num_workers=workers)
        return [torch.cat([b.src.flatten(), b.tgt.flatten()]) for b in source.batches(2, start=1)]

    alone, workers = batches(0), batches(2)
    assert len(alone) == len(workers) > 5
    assert all(torch.equal(a, b) for a, b in zip(alone, workers))


def test_sampling_stretch_measures_how_much_longer_sampled_pieces_are(tmp_path: Path) -> None:
    tokenizer = TokenizerConfig(kind=TokenizerKind.sentencepiece, vocab_size=300, sample_alpha=0.1)
    prepared = prepare(dataclasses.replace(files_config(tmp_path), tokenizer=tokenizer))
    plain = StoredPairs(prepared.splits["train"], prepared.pipeline)
    assert plain.sampling_stretch() == 1.0
    wide = StoredPairs(prepared.splits["train"], prepared.pipeline, (0.1, -1))
    narrow = StoredPairs(prepared.splits["train"], prepared.pipeline, (0.1, 2))
    assert 1.0 <= narrow.sampling_stretch() < wide.sampling_stretch()
    assert wide.sampling_stretch() > 1.05
    assert wide.sampling_stretch(seed=4) == wide.sampling_stretch(seed=4)


def test_training_warns_when_sampling_stretches_the_pieces(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from nmt.commands.train import report_stretch

    tok = TokenizerConfig(kind=TokenizerKind.sentencepiece, sample_alpha=0.1)
    with caplog.at_level("INFO"):
        report_stretch(tok, 1.1)
    assert "1.10x" in caplog.text and not [r for r in caplog.records if r.levelname == "WARNING"]
    report_stretch(tok, 1.93)
    warning = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert warning and "tokenizer.sample_alpha=0.1 nbest_size=-1" in warning[0]
