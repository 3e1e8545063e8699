"""`nmt translate`: a file or stdin in, one translated line per input line out."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

from nmt.commands.common import load_model
from nmt.config import TranslateConfig
from nmt.evaluation import translate_texts
from nmt.utils import pick_device

log = logging.getLogger(__name__)


class InputError(Exception):
    """The input cannot be read; the message names it."""


def split_lines(raw: bytes, name: str) -> list[str]:
    """Decode (bad bytes replaced, with a warning) and split on "\\n" only, so
    that every input line - empty, CRLF-terminated or odd - is one entry."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        log.warning(
            "%s: bytes that are not UTF-8 (first on line %d) were replaced by U+FFFD", name, line
        )
        text = raw.decode("utf-8", errors="replace")
    if not text:
        return []
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def read_input(path: str) -> list[str]:
    if path == "-":
        return split_lines(sys.stdin.buffer.read(), "stdin")
    try:
        return split_lines(Path(path).read_bytes(), path)
    except OSError as exc:
        raise InputError(f"cannot read input {path}: {exc.strerror or exc}") from None


def write_output(path: str, lines: list[str]) -> None:
    """Write all lines at once; a file is written to a temp file then renamed."""
    text = "".join(line + "\n" for line in lines)
    if path == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
        handle.write(text)
    os.replace(tmp, target)


def run(cfg: TranslateConfig, out_dir: Path | None = None) -> int:
    """Translate; returns the number of lines written."""
    device = pick_device(cfg.device)
    loaded = load_model(cfg.checkpoint, device)
    lines = read_input(cfg.input)
    # Newlines inside a line would break line alignment; they cannot occur after
    # split_lines, but tokenizers may emit odd whitespace: keep outputs one-line.
    outputs = translate_texts(
        loaded.model,
        lines,
        loaded.pipeline,
        cfg.decoding,
        device,
        progress=cfg.input != "-" and sys.stderr.isatty(),
    )
    outputs = [" ".join(o.split()) for o in outputs]
    write_output(cfg.output, outputs)
    if cfg.output != "-":
        log.info("wrote %d lines to %s", len(outputs), cfg.output)
    return len(outputs)
