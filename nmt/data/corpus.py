"""Parallel text: Multi30k task 1 and any pair of aligned plain-text files.

Multi30k files are looked up, in this order, in ``data.root`` (when given),
in ``$NMT_DATA_DIR`` (when set) and in the download cache ``data.cache_dir``.
Each folder may hold ``{split}.{lang}.gz`` (preferred) or the uncompressed
``{split}.{lang}``.  Missing files are downloaded into the cache when
``data.download`` is true.

Integrity checks (on the gzip bytes; uncompressed files are not checked):

every Multi30k file (train, val and the 2016, 2017 and 2018 test sets) has
its sha256 sum pinned in :data:`SHA256`.  A file with one of those names whose
sum differs raises :class:`DataError` naming it, wherever it was found, and a
download whose sum differs is never kept.

Each file is hashed at most once per process (keyed by path, mtime and size).
"""

from __future__ import annotations

import gzip
import hashlib
import itertools
import logging
import os
import tempfile
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path

from nmt.config import DataConfig, DataSource

logger = logging.getLogger(__name__)


class DataError(Exception):
    """A data file that is missing, broken or does not fit; the message names it."""


MULTI30K_SPLITS: dict[str, tuple[str, ...]] = {
    "train": ("de", "en", "fr", "cs"),
    "val": ("de", "en", "fr", "cs"),
    "test_2016_flickr": ("de", "en", "fr", "cs"),
    "test_2017_flickr": ("de", "en", "fr"),
    "test_2017_mscoco": ("de", "en", "fr"),
    "test_2018_flickr": ("cs", "de", "en", "fr"),
}

MULTI30K_URL = "https://github.com/multi30k/dataset/raw/master/data/task1/raw/{name}"

SHA256: dict[str, str] = {
    "test_2016_flickr.cs.gz": "200a4a74cc9560f051924abb9803be008d1908d77f747e9141aeb86dfd2797f1",
    "test_2016_flickr.de.gz": "9204244e408ccb38d2a55cfcd344df15005fc42a07a6e55ca6c52b6ababb8cc8",
    "test_2016_flickr.en.gz": "611d361c6334bc7246101d48097c13cf5c4413c5befc793cc629934359d532d9",
    "test_2016_flickr.fr.gz": "6d326e188d259fb1d04ac19eae3af956559b3a0b93d7635e56c90987c40c8b90",
    "test_2017_flickr.de.gz": "a2c89666db00c495cd8513b9d708d5a3acc205d7de312ef2bf5fb7ebc1540aee",
    "test_2017_flickr.en.gz": "76a444ee25172e72695cddb13ae4a3bda59430617be88e0bb46b60504f054074",
    "test_2017_flickr.fr.gz": "3ba671ceb2299f3304ffafefea7a833d08632fbaf0ba18546f8a2ec2391af496",
    "test_2017_mscoco.de.gz": "799e4854c25d601cb6cb6be29eabe5667734c61ace2f495e03e429031a0bc338",
    "test_2017_mscoco.en.gz": "aab300bfb4427697987e02cd0aacd44bfe8aa50456231b6474c08038bbed2b58",
    "test_2017_mscoco.fr.gz": "754f3072ba9f124569ba5258b32730fc1d214bbf8e0c6dfb2b74401676220db0",
    "test_2018_flickr.cs.gz": "7d0a9db904f94c554a8c58049a9f3a5357c27f46cc3d710d70cb0b4a2585b8c2",
    "test_2018_flickr.de.gz": "ddd0130c7d97482dc5197a02141dae8dd79f20f03586c480d675c09a32daf608",
    "test_2018_flickr.en.gz": "ef4f4844037d4c5dea75c9a8ed5fd78905967a26f67c255e230cc9780032654d",
    "test_2018_flickr.fr.gz": "fb2b83fcceb937a4f7e3e93c1c51c22aba92f1e342391e6b5ba392b16a920501",
    "train.cs.gz": "a65adb8b32e3bc664f21ecba7a6e7f6950fd1f405e135f7c312faabdb6255077",
    "train.de.gz": "726e39b2fa9eb9ffb6dc763fb35a179f80fae06ffc5d28b6ace5faa883de28a6",
    "train.en.gz": "d79cfa999dd4c51d2cb42499b6796d5a882c3a8a961923c25a898c90f8bbd56f",
    "train.fr.gz": "622e75069e9f4c577425c4f277116ce66e63a2401c0a2312d90073cb12379a3c",
    "val.cs.gz": "b63226e05c4bd5dd6a42897d74b86a1b9d2c31498252c572b1ea7f7996927fcc",
    "val.de.gz": "f0cba2f995189cf5770f29a8a9a537a3ad3f51657ad873405082ff6863a5e75a",
    "val.en.gz": "14f7d25ddd868909a9213e361768460edcacdd6ab9d1e77b92560dc10c10dc28",
    "val.fr.gz": "ca3106f1a72390591d25f6c45cb4cd39dec4cd3f123e099748a3ce5256c160e9",
}

ENV_DATA_DIR = "NMT_DATA_DIR"
DOWNLOAD_TIMEOUT_S = 30.0
_CHUNK = 1 << 16

# (resolved path, mtime_ns, size) -> sha256 hex digest
_HASH_CACHE: dict[tuple[str, int, int], str] = {}


# --------------------------------------------------------------------- hashing


def file_sha256(path: Path) -> str:
    """The sha256 of a file's bytes, computed at most once per path/mtime/size."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    if key not in _HASH_CACHE:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
        _HASH_CACHE[key] = digest.hexdigest()
    return _HASH_CACHE[key]


def _remember_sha256(path: Path, digest: str) -> None:
    """Store a known sum for ``path`` (e.g. after a rename) so it is not hashed again."""
    stat = path.stat()
    _HASH_CACHE[(str(path.resolve()), stat.st_mtime_ns, stat.st_size)] = digest


def _verify(path: Path) -> None:
    """Check a ``.gz`` file against its pinned sum."""
    if path.suffix != ".gz":
        logger.debug("%s is uncompressed; no checksum to compare", path)
        return
    expected = SHA256.get(path.name)
    if expected is None:
        logger.warning("%s has no pinned sha256; it is not verified", path)
        return
    actual = file_sha256(path)
    if actual != expected:
        raise DataError(
            f"{path}: sha256 mismatch: expected {expected} (pinned) but got {actual}; "
            "replace or delete the file"
        )


# ------------------------------------------------------------------ look-up


def _check_split_lang(split: str, lang: str) -> None:
    if split not in MULTI30K_SPLITS:
        raise DataError(f"Multi30k has no split {split!r}; splits: {', '.join(MULTI30K_SPLITS)}")
    langs = MULTI30K_SPLITS[split]
    if lang not in langs:
        raise DataError(f"{split} has no {lang} file; it has {', '.join(sorted(langs))}")


def _search_dirs(root: str | None, cache_dir: str) -> list[Path]:
    """Folders to look in, in priority order: root, $NMT_DATA_DIR, cache_dir."""
    dirs: list[Path] = []
    if root:
        dirs.append(Path(root).expanduser())
    env_dir = os.environ.get(ENV_DATA_DIR)
    if env_dir:
        dirs.append(Path(env_dir).expanduser())
    dirs.append(Path(cache_dir).expanduser())
    return dirs


def _find_local(split: str, lang: str, dirs: list[Path]) -> Path | None:
    for folder in dirs:
        for name in (f"{split}.{lang}.gz", f"{split}.{lang}"):
            candidate = folder / name
            if candidate.is_file():
                return candidate
    return None


def multi30k_file(
    split: str, lang: str, *, root: str | None, cache_dir: str, download: bool
) -> Path:
    """The local path of one Multi30k file, verified; downloaded if allowed."""
    _check_split_lang(split, lang)
    dirs = _search_dirs(root, cache_dir)
    found = _find_local(split, lang, dirs)
    if found is not None:
        _verify(found)
        return found
    if not download:
        searched = ", ".join(str(d) for d in dirs)
        raise DataError(
            f"{split}.{lang}(.gz) not found in {searched}; set data.download=true, "
            f"or put the file in one of those folders"
        )
    return _download(f"{split}.{lang}.gz", Path(cache_dir).expanduser())


# ----------------------------------------------------------------- download


def _fetch(url: str, dest: Path) -> None:
    """Stream ``url`` into the file ``dest`` with a progress bar."""
    from tqdm import tqdm

    with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with (
            dest.open("wb") as out,
            tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                desc=dest.name.split(".part")[0],
                leave=False,
            ) as bar,
        ):
            for chunk in iter(lambda: response.read(_CHUNK), b""):
                out.write(chunk)
                bar.update(len(chunk))


def _download(name: str, cache: Path) -> Path:
    """Download one file into ``cache`` via a temp file renamed after its check."""
    url = MULTI30K_URL.format(name=name)
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{name}.part", dir=cache)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        logger.info("downloading %s", url)
        try:
            _fetch(url, tmp)
        except (OSError, HTTPException, ValueError) as err:  # URLError is an OSError
            reason = getattr(err, "reason", None) or err
            raise DataError(
                f"could not download {url} ({reason}); put the Multi30k files in a folder "
                f"and set {ENV_DATA_DIR}=/that/folder or data.root=/that/folder"
            ) from err
        digest = file_sha256(tmp)
        _check_download(name, url, digest)
        final = cache / name
        tmp.chmod(0o644)  # mkstemp makes it private; the cache is ordinary data
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
    _remember_sha256(final, digest)
    return final


def _check_download(name: str, url: str, digest: str) -> None:
    expected = SHA256.get(name)
    if expected is not None and digest != expected:
        raise DataError(
            f"{name} downloaded from {url}: sha256 mismatch: expected {expected} but got {digest}"
        )


# ------------------------------------------------------------------ reading


def _open_bytes(path: Path) -> Iterator[bytes]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        yield from handle


def iter_lines(path: str | os.PathLike[str]) -> Iterator[str]:
    """The lines of a UTF-8 text file (``.gz`` or plain), one at a time, without
    their line ends (``\n`` or ``\r\n``)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} not found")
    number = 0
    try:
        for number, raw in enumerate(_open_bytes(path), 1):  # noqa: B007 - read on error
            text = raw.decode("utf-8")
            if text.endswith("\n"):
                text = text[:-2] if text.endswith("\r\n") else text[:-1]
            yield text
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: line {number} is not valid UTF-8 ({err.reason})") from err
    except (OSError, EOFError) as err:
        raise DataError(f"{path}: cannot read ({err})") from err


def read_lines(path: str | os.PathLike[str]) -> list[str]:
    """All lines of a UTF-8 text file (``.gz`` or plain), without their line ends."""
    return list(iter_lines(path))


def iter_parallel(src_path: str, tgt_path: str) -> Iterator[tuple[str, str]]:
    """Aligned line pairs of two files, streamed; their line counts must match
    (checked to the end of the longer one, so the error gives both counts)."""
    src, tgt = iter_lines(src_path), iter_lines(tgt_path)
    count = 0
    for count, pair in enumerate(itertools.zip_longest(src, tgt), 1):
        if pair[0] is None or pair[1] is None:
            src_n = count - 1 + (pair[0] is not None) + sum(1 for _ in src)
            tgt_n = count - 1 + (pair[1] is not None) + sum(1 for _ in tgt)
            raise DataError(f"src has {src_n} lines but tgt has {tgt_n}: {src_path}, {tgt_path}")
        yield pair


@dataclass
class ParallelText:
    """Aligned source and target lines: ``src[i]`` translates to ``tgt[i]``."""

    src: list[str]
    tgt: list[str]
    src_path: str
    tgt_path: str

    def __len__(self) -> int:
        return len(self.src)


def read_parallel(
    src_path: str | os.PathLike[str], tgt_path: str | os.PathLike[str]
) -> ParallelText:
    """Read two aligned files; their line counts must match (:func:`iter_parallel`)."""
    pairs = list(iter_parallel(str(src_path), str(tgt_path)))
    src, tgt = [s for s, _ in pairs], [t for _, t in pairs]
    return ParallelText(src=src, tgt=tgt, src_path=str(src_path), tgt_path=str(tgt_path))


# ------------------------------------------------------------------- splits

FILE_SPLITS = ("train", "val", "test")


def _file_split_paths(cfg: DataConfig, split: str) -> tuple[str, str]:
    if split not in FILE_SPLITS:
        raise DataError(f"data=files has no split {split!r}; splits: {', '.join(FILE_SPLITS)}")
    src, tgt = getattr(cfg, f"{split}_src"), getattr(cfg, f"{split}_tgt")
    if not src or not tgt:
        raise DataError(f"split {split!r} needs data.{split}_src and data.{split}_tgt")
    return src, tgt


def split_files(cfg: DataConfig, split: str) -> tuple[str, str]:
    """The source and target files of one split (``data=files`` or Multi30k,
    found, verified and downloaded if allowed)."""
    if cfg.source == DataSource.files:
        return _file_split_paths(cfg, split)
    if cfg.source != DataSource.multi30k:
        raise DataError(f"data.source={cfg.source.value} is read by nmt.data.sources, not as files")
    src, tgt = (
        multi30k_file(split, lang, root=cfg.root, cache_dir=cfg.cache_dir, download=cfg.download)
        for lang in (cfg.src_lang, cfg.tgt_lang)
    )
    return str(src), str(tgt)


def load_split(cfg: DataConfig, split: str) -> ParallelText:
    """One split of the configured corpus; ``train`` is cut to max_train_examples."""
    if cfg.source == DataSource.hf:
        from nmt.data.sources import hf_parallel_text

        data = hf_parallel_text(cfg, split)
    else:
        data = read_parallel(*split_files(cfg, split))
    check_not_empty(data, split)
    if split == "train" and cfg.max_train_examples is not None:
        keep = cfg.max_train_examples
        data = ParallelText(data.src[:keep], data.tgt[:keep], data.src_path, data.tgt_path)
    logger.info("%s: %d sentence pairs from %s", split, len(data), data.src_path)
    return data


def check_not_empty(data: ParallelText, split: str) -> None:
    """A split whose source or target side holds no text (an empty or
    blank-only file) cannot train or score a model: refuse it by name."""
    for lines, path in ((data.src, data.src_path), (data.tgt, data.tgt_path)):
        if not any(line.strip() for line in lines):
            state = "is empty" if not lines else "holds only blank lines"
            raise DataError(f"{path} ({split} split) {state}")


def available_test_splits(cfg: DataConfig) -> list[str]:
    """Test splits usable without downloading (files source: ``test`` if set)."""
    if cfg.source == DataSource.files:
        return ["test"] if cfg.test_src and cfg.test_tgt else []
    if cfg.source == DataSource.hf:
        from nmt.data.sources import has_split

        return ["test"] if has_split(cfg, "test") else []
    dirs = _search_dirs(cfg.root, cfg.cache_dir)
    found = []
    for split, langs in MULTI30K_SPLITS.items():
        if not split.startswith("test") or not {cfg.src_lang, cfg.tgt_lang} <= set(langs):
            continue
        if all(_find_local(split, lang, dirs) for lang in (cfg.src_lang, cfg.tgt_lang)):
            found.append(split)
    return found
