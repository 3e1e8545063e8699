"""The prepared-data store: a corpus tokenized and encoded once, memory-mapped ever after.

``prepare(cfg)`` turns the configured corpus (any source of
:mod:`nmt.data.sources`) into a folder ``<data.store_dir>/<key>/``:

- ``train/``, ``val/`` and the test splits found: Hugging Face ``datasets``
  folders (Arrow files, opened memory-mapped) with the columns ``src_ids`` and
  ``tgt_ids`` (``uint16`` when the vocabulary has at most 65,536 entries, else
  ``int32``), ``src_len`` and ``tgt_len`` (tokens before any cut) and, but for
  the training split without subword sampling, the raw text ``src``/``tgt``;
- ``pipeline.pt``: the tokenizers and vocabularies (``TextPipeline.state()``);
- ``meta.json``, written last: the key's inputs, rows per split, the training
  pairs skipped (empty, over-long) and the size and sha256 of every file.

The key is the sha256 of the text of every split, the data, tokenizer and
vocabulary settings that change the result, the versions of the libraries
that make it and the store format; a resumed run that brings its own
tokenizers and vocabularies adds their fingerprint.  A changed setting gives
another key, so a stale store is never reused.

Tokenizing and encoding run in ``data.prepare_workers`` processes
(``Dataset.map(num_proc=...)``).  Word vocabularies are counted from the
tokenized training split with Arrow's kernels; sentencepiece learns from a
seeded sample of at most ``tokenizer.input_sentence_size`` sentences.

Safety: one process builds a store at a time (a lock file beside it), in a
temp folder renamed into place when complete, so a reader never sees half a
store.  Opening checks every file against ``meta.json``; a damaged or
truncated store is named in one log line and prepared again.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from nmt.config import DataConfig, TokenizerConfig, TokenizerKind, VocabConfig, to_plain
from nmt.data.corpus import DataError, available_test_splits
from nmt.data.pipeline import TextPipeline, cut_source, make_tokenizers_from_lines, tokenize
from nmt.data.sources import describe_split, raw_dataset, text_fingerprint
from nmt.data.subword import seed_sampling
from nmt.data.text import clean_lines
from nmt.data.tokenizer import Tokenizer, build_tokenizers
from nmt.data.vocab import Vocab

log = logging.getLogger(__name__)

FORMAT = 1  # bump when the layout or the encoding changes
META = "meta.json"
PIPELINE = "pipeline.pt"
MIN_ROWS_PER_WORKER = 5_000  # smaller work stays in this process
_MAP_BATCH = 5_000
UNK = 0  # every Vocab's unk id
# data keys that do not change what is stored (where files are, how fast it is made)
_DATA_KEYS_IGNORED = (
    "root", "cache_dir", "store_dir", "subword_dir", "prepare_workers", "download",
    "train_src", "train_tgt", "val_src", "val_tgt", "test_src", "test_tgt",
)  # fmt: skip
_LIBRARIES = ("datasets", "pyarrow", "sentencepiece", "spacy", "sacremoses", "nmt")


class StoreDamaged(Exception):
    """A store folder that does not match its ``meta.json``; the message says how."""


class TextConfig(Protocol):
    """The parts of a config a store depends on (``TrainConfig`` has them)."""

    data: DataConfig
    tokenizer: TokenizerConfig
    vocab: VocabConfig


# ------------------------------------------------------------------ the key


def _versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def store_splits(data: DataConfig) -> list[str]:
    """The splits a store holds: train, val and the test splits found."""
    return ["train", "val", *available_test_splits(data)]


def key_inputs(cfg: TextConfig, pipeline: TextPipeline | None = None) -> dict[str, Any]:
    """Everything the store's content depends on, as plain data."""
    data = {k: v for k, v in to_plain(cfg.data).items() if k not in _DATA_KEYS_IGNORED}
    given = None
    if pipeline is not None:
        given = hashlib.sha256(repr(pipeline.state()).encode("utf-8")).hexdigest()
    return {
        "format": FORMAT,
        "data": data,
        "tokenizer": to_plain(cfg.tokenizer),
        "vocab": to_plain(cfg.vocab),
        "text": {split: text_fingerprint(cfg.data, split) for split in store_splits(cfg.data)},
        "versions": _versions(),
        "pipeline": given,
    }


def store_key(inputs: dict[str, Any]) -> str:
    blob = json.dumps(inputs, sort_keys=True, default=str).encode("utf-8")
    return hashlib.sha256(blob).hexdigest()[:32]


# ------------------------------------------------------------------ encoding
# (module-level functions: Dataset.map sends them to its worker processes)

_TOKENIZERS: dict[str, tuple[Tokenizer, Tokenizer]] = {}


def _tokenizers(state: tuple[dict[str, Any], dict[str, Any]]) -> tuple[Tokenizer, Tokenizer]:
    """The tokenizers of ``state``, built once per process."""
    key = hashlib.sha256(repr(state).encode("utf-8")).hexdigest()
    if key not in _TOKENIZERS:
        _TOKENIZERS[key] = (Tokenizer.from_dict(state[0]), Tokenizer.from_dict(state[1]))
    return _TOKENIZERS[key]


def _tokenize_batch(batch: dict[str, list[str]], tokenizers: Any) -> dict[str, list[Any]]:
    """Tokens of a batch of pairs (space-joined) and their counts."""
    out: dict[str, list[Any]] = {}
    for side, tok in zip(("src", "tgt"), _tokenizers(tokenizers)):
        tokens = tokenize(tok, batch[side])
        out[f"{side}_tok"] = [" ".join(t) for t in tokens]
        out[f"{side}_len"] = [len(t) for t in tokens]
    return out


def _encode_batch(
    batch: dict[str, list[str]], itos: tuple[list[str], list[str]], cut: tuple[int, bool]
) -> dict[str, list[list[int]]]:
    """Ids of tokenized pairs (sources cut as ``TextPipeline.encode_sources`` cuts)."""
    out = {}
    for side, tokens in zip(("src", "tgt"), itos):
        stoi = _stoi(tokens)
        ids = [
            [stoi.get(t, UNK) for t in line.split(" ")] if line else []
            for line in batch[f"{side}_tok"]
        ]
        out[f"{side}_ids"] = [cut_source(i, *cut) for i in ids] if side == "src" else ids
    return out


_STOI: dict[int, tuple[list[str], dict[str, int]]] = {}


def _stoi(itos: list[str]) -> dict[str, int]:
    """The token -> id map of ``itos``, built once per list (held, so its id stays its own)."""
    if id(itos) not in _STOI:
        _STOI[id(itos)] = (itos, {tok: i for i, tok in enumerate(itos)})
    return _STOI[id(itos)][1]


# ------------------------------------------------------------------ building


def _workers(data: DataConfig, rows: int) -> int | None:
    """Processes for ``rows`` rows (None: this one)."""
    cores = data.prepare_workers or len(os.sched_getaffinity(0))
    count = min(cores, rows // MIN_ROWS_PER_WORKER)
    return count if count > 1 else None


def _map(data: Any, fn: Any, cfg: DataConfig, out: Path, **kwargs: Any) -> Any:
    return data.map(
        fn,
        batched=True,
        batch_size=_MAP_BATCH,
        num_proc=_workers(cfg, len(data)),
        cache_file_name=str(out),
        **kwargs,
    )


def _lengths(data: Any, column: str) -> np.ndarray:
    return np.asarray(data.data.column(column).to_numpy(), dtype=np.int64)


def _token_counts(data: Any, column: str, keep: np.ndarray) -> dict[str, int]:
    """How often each token occurs in the kept rows of a space-joined token column."""
    import pyarrow as pa
    import pyarrow.compute as pc

    tables = []
    step = 200_000
    for start in range(0, len(data), step):
        lines = data.data.column(column).slice(start, step)
        lines = lines.filter(pa.array(keep[start : start + step]))
        tokens = pc.list_flatten(pc.split_pattern(lines, " "))
        tokens = tokens.filter(pc.not_equal(tokens, ""))
        counts = pc.value_counts(tokens).flatten()
        tables.append(pa.table({"token": counts[0], "n": counts[1]}))
    if not tables:
        return {}
    total = pa.concat_tables(tables).group_by("token").aggregate([("n", "sum")])
    return dict(zip(total.column("token").to_pylist(), total.column("n_sum").to_pylist()))


def _training_lines(data: Any, side: str, lower: bool) -> Iterator[str]:
    for batch in data.select_columns([side]).iter(batch_size=10_000):
        lines = clean_lines(batch[side])
        yield from (line.lower() for line in lines) if lower else lines


def _fit_tokenizers(cfg: TextConfig, train: Any) -> tuple[Tokenizer, Tokenizer]:
    """Tokenizers of a new pipeline; sentencepiece ones learn from the training text."""
    if cfg.tokenizer.kind != TokenizerKind.sentencepiece:
        return build_tokenizers(cfg.tokenizer, cfg.data.src_lang, cfg.data.tgt_lang)
    return make_tokenizers_from_lines(
        lambda side: _training_lines(train, side, cfg.tokenizer.lower),
        len(train),
        cfg.tokenizer,
        cfg.data,
        cfg.vocab,
    )


def _vocab(tok: Tokenizer, train: Any, side: str, keep: np.ndarray, cfg: VocabConfig) -> Vocab:
    if tok.kind == TokenizerKind.sentencepiece:
        return Vocab(tok.pieces, cfg.unk, cfg.pad, cfg.bos, cfg.eos)
    vocab = Vocab.from_counts(_token_counts(train, f"{side}_tok", keep), cfg)
    if len(vocab) <= 4:
        raise DataError(
            f"the {side} vocabulary holds only the 4 special tokens: no token of the "
            f"training text occurs vocab.min_freq={cfg.min_freq} times; lower vocab.min_freq "
            "or train on more text"
        )
    return vocab


def _keep(train: Any, data: DataConfig) -> tuple[np.ndarray, dict[str, int]]:
    """Which training pairs are kept (neither side empty nor over-long), and
    how many were skipped for each reason."""
    src, tgt = _lengths(train, "src_len"), _lengths(train, "tgt_len")
    empty = (src == 0) | (tgt == 0)
    long = ~empty & ((src > data.max_src_len) | (tgt > data.max_tgt_len))
    skipped = {"empty": int(empty.sum()), "over_long": int(long.sum())}
    return ~(empty | long), skipped


def _id_type(vocab: Vocab) -> str:
    return "uint16" if len(vocab) <= 2**16 else "int32"


@dataclass
class _Build:
    """One store being built in the temp folder ``tmp``."""

    cfg: TextConfig
    tmp: Path
    pipeline: TextPipeline | None

    def run(self, inputs: dict[str, Any]) -> None:
        started = time.perf_counter()
        work = self.tmp / "work"
        raw = {split: raw_dataset(self.cfg.data, split, work / split) for split in inputs["text"]}
        if self.pipeline is not None:
            tokenizers = (self.pipeline.src_tokenizer, self.pipeline.tgt_tokenizer)
        else:
            tokenizers = _fit_tokenizers(self.cfg, raw["train"])
        tokenized = {
            split: self._tokenize(split, data, tokenizers, work) for split, data in raw.items()
        }
        keep, skipped = _keep(tokenized["train"], self.cfg.data)
        _check_kept(self.cfg.data, int(keep.sum()), skipped)
        pipeline = self.pipeline or self._fit(tokenizers, tokenized["train"], keep)
        rows = {}
        for split, data in tokenized.items():
            encoded = self._encode(split, data, pipeline, work)
            if split == "train":
                encoded = encoded.select(np.flatnonzero(keep))
            encoded.save_to_disk(str(self.tmp / split))
            rows[split] = len(encoded)
        shutil.rmtree(work)
        torch.save(pipeline.state(), self.tmp / PIPELINE)
        seconds = round(time.perf_counter() - started, 1)
        meta = {"key": inputs, "rows": rows, "skipped": skipped, "seconds": seconds}
        meta["files"] = _file_sums(self.tmp)
        (self.tmp / META).write_text(json.dumps(meta, indent=1, default=str), encoding="utf-8")

    def _tokenize(
        self, split: str, raw: Any, tokenizers: tuple[Tokenizer, Tokenizer], work: Path
    ) -> Any:
        if len(raw) == 0:
            raise DataError(f"{describe_split(self.cfg.data, split, 'src')} is empty")
        log.info("prepare: tokenizing %s (%s pairs)", split, f"{len(raw):,}")
        state = (tokenizers[0].to_dict(), tokenizers[1].to_dict())
        data = _map(
            raw, _tokenize_batch, self.cfg.data, work / f"{split}-tok.arrow",
            fn_kwargs={"tokenizers": state},
        )  # fmt: skip
        for side in ("src", "tgt"):
            if not _lengths(data, f"{side}_len").any():
                where = describe_split(self.cfg.data, split, side)
                raise DataError(f"{where} holds only blank lines (or text the cleaning removes)")
        return data

    def _fit(
        self, tokenizers: tuple[Tokenizer, Tokenizer], train: Any, keep: np.ndarray
    ) -> TextPipeline:
        src_tok, tgt_tok = tokenizers
        return TextPipeline(
            src_tokenizer=src_tok,
            tgt_tokenizer=tgt_tok,
            src_vocab=_vocab(src_tok, train, "src", keep, self.cfg.vocab),
            tgt_vocab=_vocab(tgt_tok, train, "tgt", keep, self.cfg.vocab),
            max_src_len=self.cfg.data.max_src_len,
        )

    def _encode(self, split: str, data: Any, pipeline: TextPipeline, work: Path) -> Any:
        import datasets

        features = data.features.copy()
        for side, vocab in (("src", pipeline.src_vocab), ("tgt", pipeline.tgt_vocab)):
            del features[f"{side}_tok"]
            features[f"{side}_ids"] = datasets.Sequence(datasets.Value(_id_type(vocab)))
            features[f"{side}_len"] = datasets.Value("int32")
        drop = ["src_tok", "tgt_tok"]
        if split == "train" and not self.cfg.tokenizer.regularizes:
            drop += ["src", "tgt"]  # sampling re-encodes the text; nothing else reads it
            del features["src"], features["tgt"]
        log.info("prepare: encoding %s", split)
        itos = (pipeline.src_vocab.itos, pipeline.tgt_vocab.itos)
        cut = (pipeline.max_src_len, pipeline.src_tokenizer.reverse)
        return _map(
            data, _encode_batch, self.cfg.data, work / f"{split}-ids.arrow",
            fn_kwargs={"itos": itos, "cut": cut}, remove_columns=drop, features=features,
        )  # fmt: skip


def _check_kept(data: DataConfig, kept: int, skipped: dict[str, int]) -> None:
    if kept == 0:
        raise DataError(
            f"no training pair is left: {skipped['empty']} are empty and {skipped['over_long']} "
            f"longer than data.max_src_len={data.max_src_len} / "
            f"data.max_tgt_len={data.max_tgt_len} tokens"
        )


def _file_sums(folder: Path) -> dict[str, list[Any]]:
    """``{relative path: [size, sha256]}`` of every file under ``folder``."""
    sums = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and p.name != META):
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        sums[str(path.relative_to(folder))] = [path.stat().st_size, digest.hexdigest()]
    return sums


# ------------------------------------------------------------------ opening


@dataclass
class PreparedData:
    """An opened store: its splits (memory-mapped ``datasets.Dataset``) and pipeline."""

    path: Path
    pipeline: TextPipeline
    splits: dict[str, Any]
    meta: dict[str, Any]

    @property
    def skipped(self) -> dict[str, int]:
        return dict(self.meta["skipped"])


def _verify(path: Path, meta: dict[str, Any]) -> None:
    for name, (size, _) in meta["files"].items():
        file = path / name
        if not file.is_file():
            raise StoreDamaged(f"{name} is missing")
        if file.stat().st_size != size:
            raise StoreDamaged(f"{name} has {file.stat().st_size} bytes, not {size}")
    actual = _file_sums(path)
    for name, (_, digest) in meta["files"].items():
        if actual[name][1] != digest:
            raise StoreDamaged(f"{name} does not match its sha256")


def open_store(path: Path) -> PreparedData:
    """Open a complete store; :class:`StoreDamaged` if it does not match its meta."""
    import datasets

    try:
        meta = json.loads((path / META).read_text(encoding="utf-8"))
        _verify(path, meta)
        state = torch.load(path / PIPELINE, weights_only=True)
        splits = {s: datasets.load_from_disk(str(path / s)) for s in meta["rows"]}
    except StoreDamaged:
        raise
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as err:
        raise StoreDamaged(f"{type(err).__name__}: {err}".splitlines()[0]) from None
    for split, data in splits.items():
        if len(data) != meta["rows"][split]:
            raise StoreDamaged(f"{split} has {len(data)} rows, not {meta['rows'][split]}")
    return PreparedData(path, TextPipeline.from_state(state), splits, meta)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (a file beside the store), held for the block."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _try_open(path: Path, *, report: bool) -> PreparedData | None:
    """The store at ``path``, or None when it is missing or damaged (said in
    one log line when ``report``)."""
    if not path.is_dir():
        return None
    try:
        return open_store(path)
    except StoreDamaged as err:
        if report:
            log.warning("prepared store %s is damaged (%s); preparing it again", path, err)
        return None


def _build(
    cfg: TextConfig, inputs: dict[str, Any], final: Path, pipeline: TextPipeline | None
) -> None:
    root = final.parent
    for stale in root.glob(f".{final.name}.*"):  # left by a killed build; we hold the lock
        shutil.rmtree(stale, ignore_errors=True)
    if final.exists():  # damaged: out of the way first, so that the rename is atomic
        shutil.rmtree(final)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=root))
    try:
        _Build(cfg, tmp, pipeline).run(inputs)
        tmp.chmod(0o755)
        os.rename(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def prepare(cfg: TextConfig, pipeline: TextPipeline | None = None) -> PreparedData:
    """The store of ``cfg``'s corpus, opened; prepared first when it is missing
    or damaged.  ``pipeline`` (a resumed run's) encodes instead of new
    tokenizers and vocabularies."""
    inputs = key_inputs(cfg, pipeline)
    root = Path(cfg.data.store_dir).expanduser()
    final = root / store_key(inputs)
    opened = _try_open(final, report=False)
    if opened is None:
        root.mkdir(parents=True, exist_ok=True)
        with _locked(root / f"{final.name}.lock"):
            opened = _try_open(final, report=True)  # another process may have built it
            if opened is None:
                started = time.perf_counter()
                log.info("preparing %s (once for this data and these settings)", final)
                _build(cfg, inputs, final, pipeline)
                opened = open_store(final)
                log.info("prepared in %.1f s", time.perf_counter() - started)
    log.info("prepared data: %s %s", final, opened.meta["rows"])
    return opened


def with_pipeline(cfg: TextConfig, pipeline: TextPipeline) -> PreparedData:
    """The store whose ids ``pipeline`` gave: the plain one when its pipeline
    is the same (a resumed run's usually is), else one keyed by it too."""
    plain = prepare(cfg)
    if plain.pipeline.state() == pipeline.state():
        return plain
    return prepare(cfg, pipeline)


class StoredPairs:
    """The kept training pairs of a store, memory-mapped; :meth:`take` gives
    the ids of a batch.  With ``sampling`` ((alpha, nbest_size), subword
    regularization) each batch is re-encoded from the stored text with a
    sampled segmentation, seeded per batch."""

    def __init__(
        self,
        data: Any,
        pipeline: TextPipeline,
        sampling: tuple[float, int] | None = None,
    ) -> None:
        self.ids = data.select_columns(["src_ids", "tgt_ids"])
        self.text = data.select_columns(["src", "tgt"]) if sampling else None
        self.lengths = (_lengths(data, "src_len"), _lengths(data, "tgt_len"))
        self.pipeline = pipeline
        self.sampling = sampling

    def __len__(self) -> int:
        return len(self.ids)

    def widths(self) -> tuple[np.ndarray, np.ndarray]:
        """The widths ``collate`` pads each pair to (source at least 1; ``<bos> .. <eos>``)."""
        src, tgt = self.lengths
        return np.maximum(src, 1), tgt + 2

    def sampling_stretch(self, count: int = 1000, seed: int = 0) -> float:
        """Target pieces per sentence under sampling over those of the stored
        (Viterbi) segmentation, on the first ``count`` pairs: how far the
        segmentations seen in training drift from the ones seen at test time.
        1.0 without sampling."""
        if self.text is None:
            return 1.0
        rows = np.arange(min(count, len(self)))
        sampled = sum(len(t) + 2 for _, t in self.take(rows, seed))
        return sampled / max(1, int(self.widths()[1][rows].sum()))

    def take(
        self, indices: np.ndarray, seed: int | None = None
    ) -> list[tuple[list[int], list[int]]]:
        """The id pairs of ``indices``; sampled anew (seeded by ``seed``) under
        subword regularization."""
        rows = [int(i) for i in indices]
        if self.text is None or seed is None:
            found = self.ids[rows]
            return list(zip(found["src_ids"], found["tgt_ids"]))
        text = self.text[rows]
        seed_sampling(seed)
        pipe = self.pipeline
        src = tokenize(pipe.src_tokenizer, text["src"], self.sampling)
        tgt = tokenize(pipe.tgt_tokenizer, text["tgt"], self.sampling)
        cut = (pipe.max_src_len, pipe.src_tokenizer.reverse)
        return [
            (
                cut_source(pipe.src_vocab.encode(s, add_eos=False), *cut),
                pipe.tgt_vocab.encode(t, add_eos=False),
            )
            for s, t in zip(src, tgt)
        ]
