"""nmt.files: outputs that never clobber a device, a FIFO, a symlink or an input."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from nmt.files import AtomicOutput, OutputError, check_folder, check_output, write_output


def test_a_new_file_gets_the_umask_mode_and_an_old_one_keeps_its_own(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        write_output(tmp_path / "new.txt", "a\n")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "new.txt").stat().st_mode) == 0o640
    kept = tmp_path / "kept.txt"
    kept.write_text("x", encoding="utf-8")
    kept.chmod(0o604)
    write_output(kept, "y\n")
    assert stat.S_IMODE(kept.stat().st_mode) == 0o604 and kept.read_text() == "y\n"


def test_a_symlink_is_written_through(tmp_path: Path) -> None:
    target, link = tmp_path / "target.txt", tmp_path / "link.txt"
    target.write_text("old\n", encoding="utf-8")
    link.symlink_to(target.name)
    write_output(link, "new\n")
    assert link.is_symlink() and target.read_text(encoding="utf-8") == "new\n"


def test_a_fifo_is_written_in_place(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = os.open(
        fifo, os.O_RDONLY | os.O_NONBLOCK
    )  # a reader, so that open() for writing returns
    try:
        write_output(fifo, "through\n")
        assert os.read(reader, 100) == b"through\n"
    finally:
        os.close(reader)
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert [p.name for p in tmp_path.iterdir()] == ["pipe"]  # no temp file beside it


def test_an_output_that_is_an_input_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("x\n", encoding="utf-8")
    (tmp_path / "hard.txt").hardlink_to(source)
    for output in (source, tmp_path / "hard.txt"):
        with pytest.raises(OutputError, match="is also an input"):
            check_output(output, [source])
    check_output(tmp_path / "other.txt", [source])


def test_a_failed_output_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    target.write_text("old\n", encoding="utf-8")
    out = AtomicOutput(target)
    out.write("half")
    out.discard()
    assert target.read_text(encoding="utf-8") == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_folders_and_paths_under_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x", encoding="utf-8")
    with pytest.raises(OutputError, match="is a directory"):
        check_output(tmp_path)
    with pytest.raises(OutputError, match="is not a directory"):
        check_output(tmp_path / "file" / "out.txt")
    with pytest.raises(OutputError, match="is not a directory"):
        check_folder(tmp_path / "file" / "plots", "attention_plots")
    check_folder(tmp_path / "new" / "plots", "attention_plots")
