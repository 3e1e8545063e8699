"""Tests for the line handling of `nmt translate` (nmt.commands.translate)."""

from __future__ import annotations

import io
import logging
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nmt.commands.translate import InputError, read_input, split_lines, write_output

# Characters that str.splitlines() treats as line breaks but files do not.
UNICODE_BREAKS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e"]


@pytest.mark.parametrize(
    "raw, expected",
    [
        (b"", []),
        (b"\n", [""]),
        (b"one\ntwo\n", ["one", "two"]),
        (b"one\ntwo", ["one", "two"]),  # no trailing newline
        (b"one\r\ntwo\r\n", ["one", "two"]),  # CRLF
        (b"one\r\ntwo", ["one", "two"]),
        (b"one\ntwo\r\nthree\n", ["one", "two", "three"]),  # mixed endings
        (b"\n\nthree\n\n", ["", "", "three", ""]),  # empty lines kept
        (b"  \n\t\n \t \n", ["  ", "\t", " \t "]),  # whitespace-only lines kept
        (b"a\rb\n", ["a\rb"]),  # a lone CR inside a line does not split
        (b"\r", [""]),  # a lone CR: one (empty) line
        (b"\r\n", [""]),
        (b"\r\r\n", ["\r"]),
    ],
)
def test_split_lines(raw: bytes, expected: list[str]) -> None:
    assert split_lines(raw, "input.txt") == expected


@pytest.mark.parametrize("mark", UNICODE_BREAKS)
def test_unicode_line_separators_do_not_split(mark: str) -> None:
    raw = f"left{mark}right\nnext\n".encode()
    assert split_lines(raw, "x") == [f"left{mark}right", "next"]


def test_non_utf8_bytes_are_replaced_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    raw = b"fine\nalso fine\nbad \xff\xfe here\nlatin-1 caf\xe9\nend\n"
    with caplog.at_level(logging.WARNING, logger="nmt"):
        lines = split_lines(raw, "corpus.de")
    assert len(lines) == 5
    assert lines[0] == "fine" and lines[4] == "end"
    assert lines[2].startswith("bad ") and lines[2].endswith(" here") and "\ufffd" in lines[2]
    assert lines[3].startswith("latin-1 caf") and "\ufffd" in lines[3]
    (message,) = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "corpus.de" in message and "line 3" in message


def test_valid_utf8_gives_no_warning(caplog: pytest.LogCaptureFixture) -> None:
    raw = "Zwei Männer – «ça va?» 日本語 😀\n".encode()
    with caplog.at_level(logging.WARNING, logger="nmt"):
        assert split_lines(raw, "x") == ["Zwei Männer – «ça va?» 日本語 😀"]
    assert not caplog.records


def line_text(exclude: str) -> st.SearchStrategy[str]:
    """Any text a UTF-8 file can hold (no lone surrogates), without ``exclude``."""
    return st.text(alphabet=st.characters(exclude_characters=exclude, exclude_categories=["Cs"]))


@given(
    lines=st.lists(line_text("\n\r"), max_size=20),
    separator=st.sampled_from(["\n", "\r\n"]),
)
def test_round_trip_of_terminated_lines(lines: list[str], separator: str) -> None:
    raw = "".join(line + separator for line in lines).encode("utf-8")
    assert split_lines(raw, "x") == lines


@given(
    lines=st.lists(line_text("\n"), min_size=1, max_size=20),
    separator=st.sampled_from(["\n", "\r\n"]),
)
def test_count_is_kept_without_a_final_newline(lines: list[str], separator: str) -> None:
    if lines[-1] == "":
        lines = [*lines[:-1], "x"]  # "a\n" + "" is indistinguishable from "a\n"
    raw = separator.join(lines).encode("utf-8")
    assert len(split_lines(raw, "x")) == len(lines)


# ------------------------------------------------------------------ read / write


def test_read_input_file_and_stdin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = b"one\r\n\ntwo \xff\n"
    path = tmp_path / "in.txt"
    path.write_bytes(raw)
    from_file = read_input(str(path))
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(raw)))
    assert read_input("-") == from_file == ["one", "", "two \ufffd"]


def test_read_input_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.txt"
    with pytest.raises(InputError, match="nope.txt") as err:
        read_input(str(missing))
    assert "\n" not in str(err.value)


def test_read_input_directory(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=str(tmp_path)):
        read_input(str(tmp_path))


ODD_LINES = ["plain", "", "  ", "a\rb", "x\u2028y", "tab\there", "😀 ünïcödé", "\ufffd"]


def test_write_output_file_keeps_count(tmp_path: Path) -> None:
    target = tmp_path / "deep" / "dir" / "out.txt"
    write_output(str(target), ODD_LINES)
    raw = target.read_bytes()
    assert raw.count(b"\n") == len(ODD_LINES)
    assert b"\r\n" not in raw
    assert split_lines(raw, "out") == ODD_LINES
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]  # no temp file


def test_write_output_replaces_an_existing_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\nold\nold\n", encoding="utf-8")
    write_output(str(target), ["new"])
    assert target.read_text(encoding="utf-8") == "new\n"
    write_output(str(target), [])
    assert target.read_bytes() == b""


def test_write_output_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    write_output("-", ["a", "", "c"])
    assert capsys.readouterr().out == "a\n\nc\n"


def test_stream_batches_keep_every_line_across_reads() -> None:
    import os
    import threading

    from nmt.commands.translate import stream_batches

    read_fd, write_fd = os.pipe()
    pieces = [b"one\r\ntw", b"o\n\n", b"\xc3", b"\xa4 x\nlast"]
    gate = threading.Event()

    def feed() -> None:
        for piece in pieces:
            os.write(write_fd, piece)
            gate.wait(0.05)
        os.close(write_fd)

    writer = threading.Thread(target=feed)
    writer.start()
    batches = list(stream_batches(read_fd, limit=4))
    writer.join()
    os.close(read_fd)
    assert [line for batch in batches for line in batch] == ["one", "two", "", "ä x", "last"]
    assert all(batches)


def test_tsv_rows_of_a_later_batch_keep_their_line_numbers() -> None:
    from nmt.commands.translate import format_output
    from nmt.config import OutputFormat
    from nmt.translation import Translation

    batch = [[Translation("a", -1.0), Translation("b", -2.0)], [Translation("", 0.0)] * 2]
    rows = format_output(batch, OutputFormat.tsv, first_line=5)
    assert [row.split("\t")[:2] for row in rows] == [["5", "1"], ["5", "2"], ["6", "1"], ["6", "2"]]


def test_choose_decoding_takes_the_recipe_unless_the_command_line_names_one(
    tmp_path: Path,
) -> None:
    from nmt.commands.common import LoadedModel, choose_decoding
    from nmt.config import DecodingConfig, DecodingStrategy, TranslateConfig

    recipe = {"strategy": "beam", "beam_size": 3, "length_penalty": 0.6}
    loaded = LoadedModel(None, None, None, tmp_path, [tmp_path], recipe)  # type: ignore[arg-type]
    given = DecodingConfig(strategy=DecodingStrategy.sample)

    def chosen(keys: dict | None, stored: dict | None = recipe) -> tuple[DecodingConfig, str]:
        cfg = TranslateConfig(checkpoint="x.pt", decoding=given, decoding_keys=keys)
        return choose_decoding(cfg, LoadedModel(None, None, None, tmp_path, [tmp_path], stored))  # type: ignore[arg-type]

    assert chosen(None) == (given, "command line")  # decoding=sample named
    decoding, source = chosen({})
    assert (decoding.strategy, decoding.beam_size, source) == (
        DecodingStrategy.beam,
        3,
        "checkpoint (the training recipe)",
    )
    decoding, source = chosen({"n_best": 2})  # checked with the recipe's beam, not greedy
    assert decoding.n_best == 2 and decoding.beam_size == 3 and "decoding.n_best" in source
    decoding, source = chosen({}, None)  # older checkpoints: today's default
    assert decoding == DecodingConfig() and source.startswith("default")
    assert loaded.recipe_decoding == recipe
