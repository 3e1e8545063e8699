"""Tests for nmt.checkpoint: atomic saves, weights_only loads, one-line errors."""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest
import torch

from nmt.checkpoint import (
    FORMAT,
    LAST,
    VERSION,
    CheckpointError,
    load_checkpoint,
    resolve_checkpoint,
    save_checkpoint,
)
from nmt.files import OutputError


class NotPlainData:
    """A custom class: unpickling it would import (and could run) our code."""

    def __init__(self) -> None:
        self.value = 42


def payload(scale: float = 1.0) -> dict:
    return {
        "model": {"w": torch.arange(6.0).reshape(2, 3) * scale, "b": torch.zeros(3)},
        "config": {"name": "x", "nested": {"a": [1, 2.5, None, True]}},
        "step": 7,
    }


def leftovers(folder: Path) -> list[str]:
    """Files in ``folder`` other than the finished checkpoints."""
    return sorted(p.name for p in folder.iterdir() if not p.name.endswith(".pt"))


def assert_one_line(err: pytest.ExceptionInfo[CheckpointError], path: Path) -> str:
    message = str(err.value)
    assert "\n" not in message and "\x1b" not in message
    assert str(path) in message
    return message


# ----------------------------------------------------------------------- saving


def test_save_then_load_round_trip(tmp_path: Path) -> None:
    path = save_checkpoint(payload(), tmp_path / "sub" / "best.pt")
    assert path == tmp_path / "sub" / "best.pt"
    data = load_checkpoint(path)
    assert data["format"] == FORMAT and data["version"] == VERSION
    assert torch.equal(data["model"]["w"], payload()["model"]["w"])
    assert data["config"] == payload()["config"]
    assert data["step"] == 7
    # the file is readable by plain torch.load(weights_only=True) as well
    assert torch.load(path, weights_only=True)["step"] == 7


def test_save_leaves_no_temp_files(tmp_path: Path) -> None:
    for scale in (1.0, 2.0, 3.0):  # overwrite several times
        save_checkpoint(payload(scale), tmp_path / "last.pt")
    assert leftovers(tmp_path) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert torch.equal(
        load_checkpoint(tmp_path / "last.pt")["model"]["w"], payload(3.0)["model"]["w"]
    )


def test_failing_save_keeps_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "last.pt"
    save_checkpoint(payload(1.0), target)
    before = target.read_bytes()
    real_save = torch.save

    def save_half_then_fail(obj: object, handle: object, *args: object, **kwargs: object) -> None:
        handle.write(b"PK\x03\x04 half a zip file")  # type: ignore[attr-defined]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", save_half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        save_checkpoint(payload(5.0), target)
    monkeypatch.setattr(torch, "save", real_save)

    assert target.read_bytes() == before
    assert torch.equal(load_checkpoint(target)["model"]["w"], payload(1.0)["model"]["w"])
    assert leftovers(tmp_path) == []


def test_interrupted_save_keeps_the_old_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C (a BaseException) in the middle of a save cleans up too."""
    target = tmp_path / "best.pt"
    save_checkpoint(payload(1.0), target)

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", interrupted)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(payload(2.0), target)
    monkeypatch.undo()
    assert torch.equal(load_checkpoint(target)["model"]["w"], payload(1.0)["model"]["w"])
    assert leftovers(tmp_path) == []


def test_failing_first_save_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OutputError, match="cannot write checkpoint .*best.pt: disk on fire"):
        save_checkpoint(payload(), tmp_path / "best.pt")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------- loading


def test_custom_object_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "version": VERSION, "extra": NotPlainData()}, path)
    # the same file loads without weights_only: the refusal is about the object
    assert isinstance(torch.load(path, weights_only=False)["extra"], NotPlainData)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = assert_one_line(err, path)
    assert "refused" in message
    assert "NotPlainData" in message


def test_plain_pickle_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"format": FORMAT, "version": VERSION}))
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "refused" not in assert_one_line(err, path)


def test_zip_archive_that_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "archive.pt"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("readme.txt", "hello")
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert_one_line(err, path)


def test_torch_file_without_marker(tmp_path: Path) -> None:
    path = tmp_path / "other.pt"
    torch.save({"state_dict": {"w": torch.ones(2)}}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "not an nmt checkpoint" in assert_one_line(err, path)


def test_torch_file_that_is_not_a_dict(tmp_path: Path) -> None:
    path = tmp_path / "tensor.pt"
    torch.save(torch.ones(3), path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "not an nmt checkpoint" in assert_one_line(err, path)


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"this is not a checkpoint at all\n" * 10,
        bytes(range(256)) * 4,
        b"PK\x03\x04" + b"\x00" * 100,
    ],
    ids=["empty", "text", "binary", "broken-zip"],
)
def test_garbage_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "garbage.pt"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert_one_line(err, path)


def test_truncated_checkpoint(tmp_path: Path) -> None:
    path = save_checkpoint(payload(), tmp_path / "cut.pt")
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert_one_line(err, path)


def test_newer_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.pt"
    torch.save({"format": FORMAT, "version": VERSION + 1}, path)
    with pytest.raises(CheckpointError, match="newer") as err:
        load_checkpoint(path)
    assert_one_line(err, path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope" / "best.pt"
    with pytest.raises(CheckpointError, match="not found") as err:
        load_checkpoint(path)
    assert_one_line(err, path)


def test_run_dir_resolves_to_best(tmp_path: Path) -> None:
    save_checkpoint(payload(2.0), tmp_path / "run" / "checkpoints" / "best.pt")
    save_checkpoint(payload(3.0), tmp_path / "run" / "checkpoints" / "last.pt")
    data = load_checkpoint(tmp_path / "run")
    assert torch.equal(data["model"]["w"], payload(2.0)["model"]["w"])
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path)  # a folder without checkpoints


def test_resolve_checkpoint_finds_the_file_a_folder_stands_for(tmp_path: Path) -> None:
    run = tmp_path / "run"
    best = save_checkpoint(payload(2.0), run / "checkpoints" / "best.pt")
    last = save_checkpoint(payload(3.0), run / "checkpoints" / "last.pt")
    assert resolve_checkpoint(run) == best  # evaluate / translate: the best one
    assert resolve_checkpoint(run / "checkpoints") == best
    assert resolve_checkpoint(run, LAST) == last  # resume: the latest one
    assert resolve_checkpoint(last) == last  # a file is taken as given
    flat = save_checkpoint(payload(4.0), tmp_path / "flat" / "last.pt")
    assert resolve_checkpoint(tmp_path / "flat", LAST) == flat
    with pytest.raises(CheckpointError, match="not found") as err:
        resolve_checkpoint(tmp_path / "flat")  # a folder with last.pt but no best.pt
    assert "best.pt" in assert_one_line(err, tmp_path / "flat")
    with pytest.raises(CheckpointError, match="not found") as err:
        resolve_checkpoint(tmp_path / "nowhere", LAST)
    assert_one_line(err, tmp_path / "nowhere")


# ------------------------------------------------------------------- integrity


def tensor_data_offset(path: Path) -> tuple[int, int]:
    """(offset, size) in the file of the largest stored tensor's bytes."""
    with zipfile.ZipFile(path) as archive:
        info = max(
            (i for i in archive.infolist() if "/data/" in i.filename), key=lambda i: i.file_size
        )
    raw = path.read_bytes()
    header = info.header_offset
    name_len = int.from_bytes(raw[header + 26 : header + 28], "little")
    extra_len = int.from_bytes(raw[header + 28 : header + 30], "little")
    return header + 30 + name_len + extra_len, info.file_size


def test_overwritten_tensor_bytes_are_refused(tmp_path: Path) -> None:
    path = save_checkpoint({"model": {"w": torch.randn(4096)}}, tmp_path / "best.pt")
    offset, size = tensor_data_offset(path)
    assert size >= 2048
    raw = bytearray(path.read_bytes())
    raw[offset + 512 : offset + 1536] = bytes(1024)
    path.write_bytes(bytes(raw))
    # the damage is invisible to torch itself: the file still loads
    assert torch.load(path, weights_only=True)["model"]["w"].numel() == 4096
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert "damaged" in assert_one_line(err, path)


def test_file_cut_inside_a_tensor_is_refused(tmp_path: Path) -> None:
    path = save_checkpoint({"model": {"w": torch.randn(4096)}}, tmp_path / "cut.pt")
    offset, _ = tensor_data_offset(path)
    path.write_bytes(path.read_bytes()[: offset + 1000])
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert_one_line(err, path)


class RunsAShellCommand:
    """Unpickling this calls os.system: what a hostile checkpoint would hold."""

    def __reduce__(self) -> tuple:
        import os

        return (os.system, ("echo pwned",))


def test_malicious_global_is_named_and_safety_is_not_questioned(tmp_path: Path) -> None:
    path = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "version": VERSION, "x": RunsAShellCommand()}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = assert_one_line(err, path)
    assert "system" in message and ("posix.system" in message or "nt.system" in message)
    assert "weights_only" not in message and "False" not in message
