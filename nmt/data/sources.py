"""Raw parallel text as Hugging Face datasets: one row a pair, columns ``src`` and ``tgt``.

Every source reaches the prepared store (``nmt.data.store``) this way:

- ``multi30k`` and ``files``: the two text files are streamed line by line
  (:func:`nmt.data.corpus.iter_parallel`: UTF-8 checked, ``\\n``/``\\r\\n``
  ends, equal line counts) into an Arrow file, never into Python lists;
- ``hf``: whatever ``datasets`` loads - a hub name with its config
  (``wmt14`` ``de-en``), a builder with local files (``parquet``, ``json``,
  ``arrow``) or a folder written by ``save_to_disk``.  Rows hold a
  ``translation`` record ``{lang: text}`` (``data.hf_column``), or two text
  columns (``data.hf_src_column`` / ``data.hf_tgt_column``).

:func:`text_fingerprint` is the sha256 of a split's text (its files, or the
Arrow files ``datasets`` keeps it in), the part of the store's key that says
which text it was made from.
"""

from __future__ import annotations

import hashlib
import itertools
from pathlib import Path
from typing import Any

from nmt.config import DataConfig, DataSource
from nmt.data.corpus import DataError, ParallelText, file_sha256, iter_parallel, split_files

TEXT_COLUMNS = ("src", "tgt")
_ROWS_PER_BATCH = 10_000


def _datasets() -> Any:
    import datasets

    datasets.disable_progress_bars()  # nmt logs its own progress
    datasets.logging.set_verbosity_error()
    return datasets


def _from_files(src: str, tgt: str, work_dir: Path) -> Any:
    """A memory-mapped dataset of two aligned text files, written batch by
    batch as an Arrow stream (the file format ``datasets`` maps)."""
    import pyarrow as pa

    path = work_dir / "text.arrow"
    schema = pa.schema([(name, pa.string()) for name in TEXT_COLUMNS])
    pairs = iter_parallel(src, tgt)
    with pa.OSFile(str(path), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        while chunk := list(itertools.islice(pairs, _ROWS_PER_BATCH)):
            columns = [pa.array(side, pa.string()) for side in zip(*chunk)]
            writer.write_batch(pa.record_batch(columns, schema=schema))
    return _datasets().Dataset.from_file(str(path))


def _load_hf(cfg: DataConfig, split: str) -> Any:
    """The dataset's split that ``data.hf_splits`` maps ``split`` to."""
    ds = _datasets()
    if split not in cfg.hf_splits:
        raise DataError(f"data.hf_splits has no {split!r} entry")
    name, path = cfg.hf_splits[split], str(cfg.hf_path)
    folder = Path(path).expanduser()
    try:
        if (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file():
            loaded = ds.load_from_disk(str(folder))
            if not isinstance(loaded, ds.DatasetDict):
                return loaded
            if name not in loaded:
                raise DataError(
                    f"{path} has no split {name!r} (data.hf_splits.{split}); "
                    f"it has {', '.join(loaded)}"
                )
            return loaded[name]
        files = dict(cfg.hf_data_files) if cfg.hf_data_files else None
        return ds.load_dataset(path, cfg.hf_name, data_files=files, split=name)
    except DataError:
        raise
    except Exception as err:  # the library raises many kinds; the user needs one line
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"data.hf_path={path} split {name!r}: cannot load ({reason})") from None


def has_split(cfg: DataConfig, split: str) -> bool:
    """Whether a ``source=hf`` dataset has the split ``data.hf_splits`` maps ``split`` to."""
    try:
        _load_hf(cfg, split)
    except DataError:
        return False
    return True


def _records_to_columns(batch: dict[str, list[Any]], column: str, langs: tuple[str, str]) -> Any:
    out: dict[str, list[str]] = {"src": [], "tgt": []}
    for record in batch[column]:
        for name, lang in zip(TEXT_COLUMNS, langs):
            if not isinstance(record, dict) or lang not in record:
                keys = ", ".join(record) if isinstance(record, dict) else type(record).__name__
                raise DataError(
                    f"data.hf_column={column}: a row has no {lang!r} text (it has {keys}); "
                    "set data.src_lang/tgt_lang to its keys"
                )
            out[name].append(record[lang] or "")
    return out


def _to_src_tgt(data: Any, cfg: DataConfig, cache_file: Path | None) -> Any:
    """``data`` with just the columns ``src`` and ``tgt``."""
    columns = data.column_names
    if cfg.hf_src_column and cfg.hf_tgt_column:
        for key in ("hf_src_column", "hf_tgt_column"):
            if getattr(cfg, key) not in columns:
                raise DataError(
                    f"data.{key}={getattr(cfg, key)}: no such column; "
                    f"the dataset has {', '.join(columns)}"
                )
        picked = data.select_columns([cfg.hf_src_column, cfg.hf_tgt_column])
        return picked.rename_columns({cfg.hf_src_column: "src", cfg.hf_tgt_column: "tgt"})
    if cfg.hf_column not in columns:
        raise DataError(
            f"data.hf_column={cfg.hf_column}: no such column; the dataset has "
            f"{', '.join(columns)} (or set data.hf_src_column/hf_tgt_column)"
        )
    return data.map(
        _records_to_columns,
        batched=True,
        batch_size=_ROWS_PER_BATCH,
        fn_kwargs={"column": cfg.hf_column, "langs": (cfg.src_lang, cfg.tgt_lang)},
        remove_columns=columns,
        cache_file_name=None if cache_file is None else str(cache_file),
        keep_in_memory=cache_file is None,
    )


def raw_dataset(cfg: DataConfig, split: str, work_dir: Path) -> Any:
    """One split as a ``datasets.Dataset`` with text columns ``src`` and ``tgt``
    (``train`` cut to ``data.max_train_examples``); its Arrow files go to ``work_dir``."""
    work_dir.mkdir(parents=True, exist_ok=True)
    if cfg.source == DataSource.hf:
        data = _to_src_tgt(_load_hf(cfg, split), cfg, work_dir / f"{split}-text.arrow")
    else:
        data = _from_files(*split_files(cfg, split), work_dir)
    if split == "train" and cfg.max_train_examples is not None:
        data = data.select(range(min(cfg.max_train_examples, len(data))))
    return data


def describe_split(cfg: DataConfig, split: str, side: str) -> str:
    """One side of a split, as a user would name it in a message."""
    if cfg.source == DataSource.hf:
        return f"data.hf_path={cfg.hf_path} split {cfg.hf_splits.get(split, split)!r} ({side})"
    return f"{split_files(cfg, split)[0 if side == 'src' else 1]} ({split} split)"


def hf_parallel_text(cfg: DataConfig, split: str) -> ParallelText:
    """A (small) split of a ``source=hf`` dataset as lists of lines."""
    data = _to_src_tgt(_load_hf(cfg, split), cfg, None)
    name = f"{cfg.hf_path}[{cfg.hf_splits[split]}]"
    return ParallelText(list(data["src"]), list(data["tgt"]), f"{name}:src", f"{name}:tgt")


def text_fingerprint(cfg: DataConfig, split: str) -> str:
    """sha256 of a split's text: of its two files, or of the Arrow files the
    loaded dataset lives in (its own fingerprint when it is only in memory)."""
    digest = hashlib.sha256()
    if cfg.source == DataSource.hf:
        data = _load_hf(cfg, split)
        files = [Path(f["filename"]) for f in data.cache_files]
        parts = [file_sha256(p) for p in files] if files else [str(data._fingerprint)]
    else:
        parts = [file_sha256(Path(p)) for p in split_files(cfg, split)]
    for part in parts:
        digest.update(part.encode("ascii"))
    return digest.hexdigest()
