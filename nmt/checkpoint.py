"""Checkpoints: atomic saves, safe loads.

A checkpoint is a plain dict of tensors and JSON-like data - model and
optimizer state, the resolved config, vocabularies and tokenizer settings -
so that ``torch.load(weights_only=True)`` can read it and ``evaluate`` /
``translate`` can rebuild everything from the file alone.

A run dir keeps its checkpoints in ``RUN/checkpoints/``: ``last.pt`` (the
latest save), ``best.pt`` (the best validation score) and step snapshots.
:func:`resolve_checkpoint` turns a run dir, that folder or a file into the
file to read.
"""

from __future__ import annotations

import io
import os
import pickle
import re
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch

from nmt.files import AtomicOutput, OutputError

FORMAT = "nmt-checkpoint"
VERSION = 1
CHECKPOINTS = "checkpoints"  # the folder of a run dir that holds its checkpoints
LAST = "last.pt"
BEST = "best.pt"


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message names the file."""


def save_checkpoint(payload: dict[str, Any], path: str | Path) -> Path:
    """Write ``payload`` to ``path`` through a temporary file and a rename
    (nmt.files.AtomicOutput: through a symlink, in place on a device).

    A run killed while saving leaves either the old file or the new one, never
    half of one.
    """
    data = {"format": FORMAT, "version": VERSION, **payload}
    out = AtomicOutput(path, binary=True, what="checkpoint")  # see nmt.files
    try:
        if out.in_place:  # torch.save seeks: a device or a FIFO gets the bytes at once
            buffer = io.BytesIO()
            torch.save(data, buffer)
            out.write(buffer.getvalue())
        else:
            torch.save(data, out.handle)
        return out.commit(sync=True)
    except RuntimeError as exc:  # torch's writer words a full disk this way
        raise OutputError(f"cannot write checkpoint {path}: {_first_line(str(exc))}") from None
    finally:
        out.discard()


def link_checkpoint(source: str | Path, target: str | Path) -> Path:
    """Make ``target`` the same file as ``source`` (a hard link, or a copy where
    links are not possible), replacing ``target`` atomically.

    ``save_checkpoint`` never writes into an existing file (it renames a new
    one over it), so the two names stay independent afterwards.
    """
    source, target = Path(source), Path(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.unlink(tmp)
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def _first_line(text: str) -> str:
    text = re.sub(r"\x1b\[[0-9;]*m", "", text).strip()  # no terminal colour codes
    return text.splitlines()[0][:200] if text else ""


def _unpickling_reason(exc: pickle.UnpicklingError) -> str:
    """What torch's weights_only loader refused: the global it names (torch words
    it "Unsupported global: GLOBAL x.y" or "unsupported GLOBAL x.y"), else its own
    reason.  Torch's advice to turn weights_only off is never passed on."""
    text = str(exc)
    match = re.search(r"unsupported global:? (?:GLOBAL )?([\w.]+)", text, re.IGNORECASE)
    if match:
        return f"unsupported global {match.group(1)}"
    match = re.search(r"WeightsUnpickler error:\s*(\S[^\n]*)", text)
    reason = _first_line(match.group(1)) if match else ""
    return reason if reason and "weights_only" not in reason else "an object it may not build"


def verify_archive(path: Path) -> None:
    """Check every member of the checkpoint's zip archive against the CRC-32 its
    header records; a damaged or cut file raises a one-line CheckpointError.

    torch.save writes zip archives with a CRC per member, so this finds a
    changed byte inside a tensor that ``torch.load`` would read without a word,
    and it works for checkpoints written by any nmt version.
    """
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as exc:
        reason = _first_line(str(exc)) or type(exc).__name__
        raise CheckpointError(f"{path}: damaged checkpoint ({reason})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: damaged checkpoint (CRC mismatch in {bad}); not loaded")


def resolve_checkpoint(path: str | Path, name: str = BEST) -> Path:
    """The checkpoint file ``path`` stands for: a file as given; for a run dir or
    its checkpoints folder, ``checkpoints/<name>`` or ``<name>`` inside it
    (``best.pt`` to evaluate or translate, ``last.pt`` to resume)."""
    path = Path(path)
    if path.is_dir():
        for candidate in (path / CHECKPOINTS / name, path / name):
            if candidate.is_file():
                return candidate
        raise CheckpointError(f"no checkpoint in {path}: {CHECKPOINTS}/{name} and {name} not found")
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}: not found")
    return path


def run_dir_of(checkpoint: str | Path) -> Path:
    """The run dir a checkpoint file sits in (``RUN/checkpoints/x.pt`` -> ``RUN``)."""
    parent = Path(checkpoint).resolve().parent
    return parent.parent if parent.name == CHECKPOINTS else parent


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Load a checkpoint (a file, or a run dir's ``best.pt``, see
    :func:`resolve_checkpoint`) with ``weights_only=True`` after checking its
    CRCs (:func:`verify_archive`); one-line errors name the file."""
    path = resolve_checkpoint(path)
    if not zipfile.is_zipfile(path):  # torch.save writes zip archives (since torch 1.6)
        raise CheckpointError(f"{path}: not a PyTorch checkpoint (not a zip archive)")
    verify_archive(path)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError(
            f"{path}: refused to load - it holds objects other than tensors and plain data "
            f"({_unpickling_reason(exc)})"
        ) from None
    except Exception as exc:  # garbage bytes raise anything (IndexError, KeyError, ...)
        reason = _first_line(str(exc)) or type(exc).__name__
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({reason})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an nmt checkpoint (no '{FORMAT}' marker)")
    if data.get("version", 0) > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {data.get('version')} is newer than this nmt "
            f"({VERSION}); upgrade nmt"
        )
    return data
