"""Tests for nmt.data.corpus: look-up order, checksums, downloads, reading."""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from nmt.config import DataConfig, DataSource
from nmt.data import corpus
from nmt.data.corpus import (
    MULTI30K_SPLITS,
    SHA256,
    DataError,
    available_test_splits,
    load_split,
    multi30k_file,
    read_lines,
    read_parallel,
)

# Read before the autouse fixture below clears it for every test.
_SHARED_DIR = os.environ.get("NMT_DATA_DIR")


@pytest.fixture(autouse=True)
def _no_env_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NMT_DATA_DIR", raising=False)


@pytest.fixture
def shared_multi30k() -> Path:
    """The real Multi30k folder named by $NMT_DATA_DIR; skip when it is absent."""
    if not _SHARED_DIR or not (Path(_SHARED_DIR) / "train.de.gz").is_file():
        pytest.skip("set NMT_DATA_DIR to a folder with the Multi30k files")
    return Path(_SHARED_DIR)


def write_gz(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as handle:
        handle.write("".join(line + "\n" for line in lines).encode("utf-8"))
    return path


def write_plain(path: Path, lines: list[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def find(split: str, lang: str, tmp_path: Path, **kwargs: object) -> Path:
    options: dict = {"root": None, "cache_dir": str(tmp_path / "cache"), "download": False}
    options.update(kwargs)
    return multi30k_file(split, lang, **options)


# ------------------------------------------------------------ splits and langs


def test_split_table() -> None:
    assert set(MULTI30K_SPLITS) == {
        "train",
        "val",
        "test_2016_flickr",
        "test_2017_flickr",
        "test_2017_mscoco",
        "test_2018_flickr",
    }
    assert "cs" not in MULTI30K_SPLITS["test_2017_mscoco"]
    assert len(SHA256) == 22  # every file of every split (issue 15.11 pinned 2017/2018)


def test_unknown_split_lists_splits(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="test_2019.*test_2016_flickr"):
        find("test_2019", "de", tmp_path)


def test_missing_language_names_available_ones(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="test_2017_mscoco has no cs file; it has de, en, fr"):
        find("test_2017_mscoco", "cs", tmp_path)


# ------------------------------------------------------------------- look-up


def test_search_order_root_env_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, env, cache = tmp_path / "root", tmp_path / "env", tmp_path / "cache"
    for folder in (root, env, cache):
        write_plain(folder / "test_2017_flickr.de", [folder.name])
    monkeypatch.setenv("NMT_DATA_DIR", str(env))
    assert find("test_2017_flickr", "de", tmp_path, root=str(root)).parent == root
    assert find("test_2017_flickr", "de", tmp_path).parent == env
    monkeypatch.delenv("NMT_DATA_DIR")
    assert find("test_2017_flickr", "de", tmp_path).parent == cache


def test_gz_preferred_and_plain_accepted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(SHA256, "test_2017_flickr.en.gz")  # a home-made file stands in
    root = tmp_path / "root"
    write_plain(root / "test_2017_flickr.en", ["plain"])
    assert find("test_2017_flickr", "en", tmp_path, root=str(root)).name == "test_2017_flickr.en"
    write_gz(root / "test_2017_flickr.en.gz", ["zipped"])
    path = find("test_2017_flickr", "en", tmp_path, root=str(root))
    assert path.name == "test_2017_flickr.en.gz"
    assert read_lines(path) == ["zipped"]


def test_not_found_lists_folders(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not found in") as info:
        find("val", "de", tmp_path, root=str(tmp_path / "r"))
    assert str(tmp_path / "r") in str(info.value)
    assert str(tmp_path / "cache") in str(info.value)


def test_pinned_checksum_mismatch_names_file(tmp_path: Path) -> None:
    fake = write_gz(tmp_path / "root" / "train.de.gz", ["not the real data"])
    with pytest.raises(DataError) as info:
        find("train", "de", tmp_path, root=str(tmp_path / "root"))
    message = str(info.value)
    assert str(fake) in message
    assert SHA256["train.de.gz"] in message
    assert hashlib.sha256(fake.read_bytes()).hexdigest() in message


def test_plain_file_with_pinned_name_is_not_hashed(tmp_path: Path) -> None:
    write_plain(tmp_path / "root" / "train.de", ["a", "b"])
    assert find("train", "de", tmp_path, root=str(tmp_path / "root")).name == "train.de"


def test_available_test_splits(tmp_path: Path) -> None:
    root = tmp_path / "root"
    for split in ("test_2017_flickr", "test_2018_flickr"):
        write_plain(root / f"{split}.de", ["x"])
    write_plain(root / "test_2017_flickr.en", ["y"])
    cfg = DataConfig(root=str(root), cache_dir=str(tmp_path / "cache"), download=False)
    assert available_test_splits(cfg) == ["test_2017_flickr"]


# ------------------------------------------------------------------ download


def test_download_failure_mentions_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("network is unreachable")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match="NMT_DATA_DIR") as info:
        find("test_2017_flickr", "de", tmp_path, download=True)
    assert "network is unreachable" in str(info.value)
    assert "test_2017_flickr.de.gz" in str(info.value)
    assert list(cache.iterdir()) == []  # no partial file left behind


def fake_fetch(payload: bytes, calls: list[str]):
    def fetch(url: str, dest: Path) -> None:
        calls.append(url)
        dest.write_bytes(payload)

    return fetch


@pytest.mark.parametrize("split,lang", [("test_2017_mscoco", "fr"), ("test_2018_flickr", "de")])
def test_2017_and_2018_downloads_are_checked_against_pinned_sums(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, split: str, lang: str
) -> None:
    calls: list[str] = []
    monkeypatch.setattr(corpus, "_fetch", fake_fetch(gzip.compress(b"ein Satz\n"), calls))
    with pytest.raises(DataError) as info:
        find(split, lang, tmp_path, download=True)
    message = str(info.value)
    assert "\n" not in message and f"{split}.{lang}.gz" in message and "sha256 mismatch" in message
    assert calls == [corpus.MULTI30K_URL.format(name=f"{split}.{lang}.gz")]
    assert not (tmp_path / "cache" / f"{split}.{lang}.gz").exists()
    assert not (tmp_path / "cache" / "SHA256SUMS").exists()  # nothing trusted on first use


def test_every_multi30k_file_has_a_pinned_sum() -> None:
    names = {f"{split}.{lang}.gz" for split, langs in MULTI30K_SPLITS.items() for lang in langs}
    assert names == set(SHA256)
    assert all(len(value) == 64 for value in SHA256.values())


def test_a_changed_2017_file_in_a_folder_is_refused(tmp_path: Path) -> None:
    fake = write_gz(tmp_path / "root" / "test_2017_flickr.de.gz", ["not the official file"])
    with pytest.raises(DataError) as info:
        find("test_2017_flickr", "de", tmp_path, root=str(tmp_path / "root"))
    assert str(fake) in str(info.value) and SHA256["test_2017_flickr.de.gz"] in str(info.value)


def test_pinned_download_with_wrong_bytes_is_rejected(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(corpus, "_fetch", fake_fetch(gzip.compress(b"x\n"), []))
    with pytest.raises(DataError, match="val.en.gz.*sha256 mismatch"):
        find("val", "en", tmp_path, download=True)
    assert list((tmp_path / "cache").iterdir()) == []


# ------------------------------------------------------------------- reading


def test_read_lines_strips_only_line_ends(tmp_path: Path) -> None:
    path = tmp_path / "a.txt"
    path.write_bytes(b"  one \r\ntwo\t\n\nlast")
    assert read_lines(path) == ["  one ", "two\t", "", "last"]


def test_read_lines_keeps_unicode_separators(tmp_path: Path) -> None:
    path = write_gz(tmp_path / "a.gz", ["x\u2028y", "z\x0cw"])
    assert read_lines(path) == ["x\u2028y", "z\x0cw"]


def test_read_lines_bad_utf8_names_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(b"ok\nfine\nbad \xff byte\n")
    with pytest.raises(DataError, match=r"bad.txt: line 3 is not valid UTF-8"):
        read_lines(path)


def test_read_parallel_missing_file(tmp_path: Path) -> None:
    src = write_plain(tmp_path / "src.txt", ["a"])
    with pytest.raises(DataError, match="tgt.txt not found"):
        read_parallel(src, tmp_path / "tgt.txt")


def test_read_parallel_count_mismatch_names_both(tmp_path: Path) -> None:
    src = write_plain(tmp_path / "src.txt", ["a", "b", "c"])
    tgt = write_plain(tmp_path / "tgt.txt", ["x", "y"])
    with pytest.raises(DataError, match="src has 3 lines but tgt has 2") as info:
        read_parallel(src, tgt)
    assert str(src) in str(info.value) and str(tgt) in str(info.value)


# -------------------------------------------------------------------- splits


def files_config(tmp_path: Path, **kwargs: object) -> DataConfig:
    paths = {}
    for split in ("train", "val"):
        for side, lang in (("src", "de"), ("tgt", "en")):
            name = f"{split}.{lang}"
            lines = [f"{name} {i}" for i in range(5)]
            paths[f"{split}_{side}"] = str(write_plain(tmp_path / name, lines))
    return DataConfig(source=DataSource.files, **paths, **kwargs)


def test_load_split_files_source(tmp_path: Path) -> None:
    cfg = files_config(tmp_path, max_train_examples=3)
    train = load_split(cfg, "train")
    assert len(train) == 3 and train.src[0] == "train.de 0" and train.tgt[2] == "train.en 2"
    assert len(load_split(cfg, "val")) == 5
    assert available_test_splits(cfg) == []
    with pytest.raises(DataError, match="test"):
        load_split(cfg, "test")
    with pytest.raises(DataError, match="train, val, test"):
        load_split(cfg, "test_2016_flickr")


def test_load_split_files_with_test(tmp_path: Path) -> None:
    src = write_plain(tmp_path / "t.de", ["a"])
    tgt = write_plain(tmp_path / "t.en", ["b"])
    cfg = files_config(tmp_path, test_src=str(src), test_tgt=str(tgt))
    assert available_test_splits(cfg) == ["test"]
    assert load_split(cfg, "test").tgt == ["b"]


def test_load_split_multi30k_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(SHA256, "test_2017_mscoco.en.gz")  # a home-made file stands in
    root = tmp_path / "root"
    write_plain(root / "test_2017_mscoco.fr", ["un", "deux"])
    write_gz(root / "test_2017_mscoco.en.gz", ["one", "two"])
    cfg = DataConfig(
        src_lang="fr",
        tgt_lang="en",
        root=str(root),
        download=False,
        cache_dir=str(tmp_path / "cache"),
    )
    data = load_split(cfg, "test_2017_mscoco")
    assert data.src == ["un", "deux"] and data.tgt == ["one", "two"]


# -------------------------------------------------------- real shared files


def test_shared_files_verify(shared_multi30k: Path, tmp_path: Path) -> None:
    cfg = DataConfig(root=str(shared_multi30k), cache_dir=str(tmp_path / "c"), download=False)
    val = load_split(cfg, "val")
    assert len(val) == 1014
    assert "test_2016_flickr" in available_test_splits(cfg)
    for name in SHA256:
        if not (shared_multi30k / name).is_file():  # the shared folder lacks 2017/2018
            continue
        split, lang, _ = name.rsplit(".", 2)
        assert find(split, lang, tmp_path, root=str(shared_multi30k)).name == name
    small = DataConfig(
        root=str(shared_multi30k),
        cache_dir=str(tmp_path / "c"),
        download=False,
        max_train_examples=10,
    )
    assert len(load_split(small, "train")) == 10


def test_each_file_hashed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    made = []
    real_sha256 = hashlib.sha256

    def counting_sha256(*args: bytes):
        made.append(1)
        return real_sha256(*args)

    monkeypatch.setattr(corpus.hashlib, "sha256", counting_sha256)
    path = write_gz(tmp_path / "x.gz", ["a"])
    first = corpus.file_sha256(path)
    assert corpus.file_sha256(path) == first
    assert len(made) == 1
