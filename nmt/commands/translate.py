"""`nmt translate`: a file or stdin in, one translated line per input line out.

A regular file (or stdin redirected from one) is read whole and translated in
length-sorted batches.  A pipe or a terminal is streamed: each line is
translated, written and flushed as soon as it arrives, and the lines already
waiting are decoded as one batch.  A file output is written as nmt.files
says (never clobbering a device, a FIFO, a symlink or the input); it is
checked before any work.
"""

from __future__ import annotations

import logging
import os
import select
import stat
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import torch

from nmt.commands.common import LoadedModel, choose_decoding, load_model
from nmt.config import OutputFormat, TranslateConfig, checkpoint_list
from nmt.files import AtomicOutput, check_folder
from nmt.files import check_output as check_output_file
from nmt.plots import plot_attention
from nmt.translation import Translation, translate_nbest
from nmt.utils import pick_device

log = logging.getLogger(__name__)


class InputError(Exception):
    """The input cannot be read, or the output cannot be written; the message names it."""


def split_lines(raw: bytes, name: str, first_line: int = 1) -> list[str]:
    """Decode (bad bytes replaced, with a warning that numbers the lines from
    ``first_line``) and split on "\\n" only, so that every input line - empty,
    CRLF-terminated or odd - is one entry."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + first_line
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


def check_output(cfg: TranslateConfig) -> None:
    """Refuse, before any work, a closed stdin, a plot folder that cannot be
    written, and an output that cannot become a file or that is the input
    (see nmt.files.check_output)."""
    if cfg.input == "-" and sys.stdin is None:
        raise InputError("input=-: stdin is closed; give input=FILE or pipe text in")
    if cfg.attention_plots and cfg.attention_plots_max > 0:
        check_folder(cfg.attention_plots, "attention_plots")
    if cfg.output == "-":
        return
    check_output_file(cfg.output, [cfg.input if cfg.input != "-" else "/dev/stdin"])


class OutputFile:
    """The output, written as it comes: stdout, or a file that becomes the
    target only on :meth:`commit` (see nmt.files.AtomicOutput: no temp file
    left behind on an error, devices and FIFOs written in place)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.file = None if path == "-" else AtomicOutput(path)

    def write(self, lines: list[str]) -> None:
        text = "".join(line + "\n" for line in lines)
        if self.file is None:
            sys.stdout.write(text)
            sys.stdout.flush()
        else:
            self.file.write(text)

    def commit(self) -> None:
        if self.file is not None:
            self.file.commit()

    def discard(self) -> None:
        if self.file is not None:
            self.file.discard()


def write_output(path: str, lines: list[str]) -> None:
    """Write all lines at once (stdout, or a file as :class:`OutputFile` does)."""
    out = OutputFile(path)
    try:
        out.write(lines)
        out.commit()
    finally:
        out.discard()


def one_line(text: str) -> str:
    """Whitespace runs (tabs, odd Unicode spaces) -> one space: a text stays one
    line, and one TSV field."""
    return " ".join(text.split())


def format_output(
    translations: list[list[Translation]], output_format: OutputFormat, first_line: int = 1
) -> list[str]:
    """The output lines: per input line, its n-best texts in rank order (plain),
    or ``line<TAB>rank<TAB>score<TAB>text`` rows, line from ``first_line`` and
    rank from 1 (tsv)."""
    if output_format == OutputFormat.plain:
        return [one_line(t.text) for line in translations for t in line]
    return [
        f"{number}\t{rank}\t{t.score:.4f}\t{one_line(t.text)}"
        for number, line in enumerate(translations, first_line)
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


def is_stream(path: str) -> bool:
    """True when the input is stdin and not a regular file (a pipe, a terminal)."""
    if path != "-":
        return False
    try:
        return not stat.S_ISREG(os.fstat(sys.stdin.fileno()).st_mode)
    except (OSError, ValueError):  # no stdin file descriptor: read it whole
        return False


def stream_batches(fd: int, limit: int = 1 << 16) -> Iterator[list[str]]:
    """The lines of ``fd`` as they arrive: wait for input, then take every
    complete line already waiting (up to about ``limit`` bytes) as one batch.
    The last line may lack its newline; lines split as :func:`split_lines` does
    (warnings number them from the start of the stream)."""
    pending, done = b"", 0
    while True:
        chunk = os.read(fd, limit)
        while chunk and len(chunk) < limit and select.select([fd], [], [], 0)[0]:
            more = os.read(fd, limit - len(chunk))
            if not more:
                break
            chunk += more
        if not chunk:
            break
        complete, newline, rest = (pending + chunk).rpartition(b"\n")
        pending = rest
        if newline:
            lines = split_lines(complete + newline, "stdin", done + 1)
            done += len(lines)
            yield lines
    if pending:
        yield split_lines(pending, "stdin", done + 1)


def translate_lines(
    cfg: TranslateConfig,
    loaded: LoadedModel,
    device: torch.device,
    lines: list[str],
    *,
    progress: bool,
    first_line: int = 1,
) -> list[list[Translation]]:
    plots = bool(cfg.attention_plots) and cfg.attention_plots_max > 0
    return translate_nbest(
        loaded.model,
        lines,
        loaded.pipeline,
        cfg.decoding,
        device,
        progress=progress,
        keep_attention=plots,
        first_line=first_line,
    )


def run(cfg: TranslateConfig, out_dir: Path | None = None) -> int:
    """Translate; returns the number of lines written."""
    check_output(cfg)
    device = pick_device(cfg.device)
    loaded = load_model(checkpoint_list(cfg.checkpoint), device)
    decoding, source = choose_decoding(cfg, loaded)
    cfg = replace(cfg, decoding=decoding, decoding_keys=None)
    stream = is_stream(cfg.input)
    out = OutputFile(cfg.output)
    try:
        if stream:
            written, kept = _translate_stream(cfg, loaded, device, out)
        else:
            translations = translate_lines(
                cfg,
                loaded,
                device,
                read_input(cfg.input),
                progress=cfg.input != "-" and sys.stderr.isatty(),
            )
            outputs = format_output(translations, cfg.output_format)
            out.write(outputs)
            written, kept = len(outputs), translations
        out.commit()
    finally:
        out.discard()
    how = f"{decoding.strategy.value} search, decoding from the {source}"
    if cfg.output != "-":
        log.info("wrote %d lines to %s (%s)", written, cfg.output, how)
    else:  # stderr stays quiet beside a stream on stdout
        log.debug("translated %d lines (%s)", written, how)
    if cfg.attention_plots and cfg.attention_plots_max > 0:
        write_attention_plots(kept, Path(cfg.attention_plots), cfg.attention_plots_max)
    return written


def _translate_stream(
    cfg: TranslateConfig, loaded: LoadedModel, device: torch.device, out: OutputFile
) -> tuple[int, list[list[Translation]]]:
    """Translate stdin batch by batch as lines arrive, writing (and flushing)
    each batch's output at once; returns the lines written and the first
    translations (for attention plots)."""
    written, done = 0, 0
    kept: list[list[Translation]] = []
    for lines in stream_batches(sys.stdin.fileno()):
        translations = translate_lines(
            cfg, loaded, device, lines, progress=False, first_line=done + 1
        )
        outputs = format_output(translations, cfg.output_format, first_line=done + 1)
        out.write(outputs)
        written, done = written + len(outputs), done + len(lines)
        kept += translations[: max(cfg.attention_plots_max - len(kept), 0)]
    return written, kept
