"""`nmt translate`: a file or stdin in, one translated line per input line out."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
from pathlib import Path

from nmt.commands.common import load_model
from nmt.config import OutputFormat, TranslateConfig
from nmt.plots import plot_attention
from nmt.translation import Translation, translate_nbest
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


def one_line(text: str) -> str:
    """Whitespace runs (tabs, odd Unicode spaces) -> one space: a text stays one
    line, and one TSV field."""
    return " ".join(text.split())


def format_output(translations: list[list[Translation]], output_format: OutputFormat) -> list[str]:
    """The output lines: per input line, its n-best texts in rank order (plain),
    or ``line<TAB>rank<TAB>score<TAB>text`` rows, line and rank from 1 (tsv)."""
    if output_format == OutputFormat.plain:
        return [one_line(t.text) for line in translations for t in line]
    return [
        f"{number}\t{rank}\t{t.score:.4f}\t{one_line(t.text)}"
        for number, line in enumerate(translations, 1)
        for rank, t in enumerate(line, 1)
    ]


def write_attention_plots(translations: list[list[Translation]], folder: Path, limit: int) -> int:
    """One heatmap per input line among the first ``limit`` (best translation;
    empty lines skipped), named ``line<N>.png``; returns how many were written."""
    written = 0
    for number, line in enumerate(translations[:limit], 1):
        best = line[0]
        if not best.tokens:
            continue
        if best.attention is None:
            log.warning("attention_plots: this model has no attention weights; no plots written")
            return 0
        path = folder / f"line{number:05d}.png"
        plot_attention(best.attention, best.src_tokens, best.tokens, path, title=f"line {number}")
        written += 1
    log.info("wrote %d attention plots to %s", written, folder)
    return written


def run(cfg: TranslateConfig, out_dir: Path | None = None) -> int:
    """Translate; returns the number of lines written."""
    device = pick_device(cfg.device)
    loaded = load_model(cfg.checkpoint, device)
    lines = read_input(cfg.input)
    plots = bool(cfg.attention_plots) and cfg.attention_plots_max > 0
    translations = translate_nbest(
        loaded.model,
        lines,
        loaded.pipeline,
        cfg.decoding,
        device,
        progress=cfg.input != "-" and sys.stderr.isatty(),
        keep_attention=plots,
    )
    outputs = format_output(translations, cfg.output_format)
    write_output(cfg.output, outputs)
    if cfg.output != "-":
        log.info("wrote %d lines to %s", len(outputs), cfg.output)
    if plots and cfg.attention_plots:
        write_attention_plots(translations, Path(cfg.attention_plots), cfg.attention_plots_max)
    return len(outputs)
