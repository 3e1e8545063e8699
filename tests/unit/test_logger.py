"""Tests for nmt.training.logger: metrics.jsonl, TensorBoard, learning curves."""

from __future__ import annotations

import io
import json
import logging
import sys
from pathlib import Path

import pytest

from nmt.plots import plot_learning_curves
from nmt.training import logger as logger_module
from nmt.training.logger import CURVES_PNG, MetricsLog, PlainProgress, epoch_progress

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def epoch_record(epoch: int, bleu: float | None = None) -> dict:
    record = {"type": "epoch", "epoch": epoch, "step": 10 * epoch}
    record |= {"train_loss": 3.0 / epoch, "val_loss": 3.2 / epoch}
    return record if bleu is None else record | {"val_bleu": bleu}


@pytest.mark.parametrize("with_bleu", [True, False])
def test_learning_curves_png(tmp_path: Path, with_bleu: bool) -> None:
    records = [epoch_record(e, 5.0 * e if with_bleu else None) for e in (1, 2, 3)]
    records.insert(1, {"type": "train", "step": 5, "loss": 2.0})  # ignored
    path = plot_learning_curves(records, tmp_path / "sub" / "curves.png")
    assert path.read_bytes()[:8] == PNG_MAGIC


def test_metrics_log_writes_lines_and_the_curves(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path)
    assert log.plot() is None  # nothing to draw yet
    for e in (1, 2):
        log.write({"type": "train", "epoch": e, "step": 10 * e - 5, "loss": 1.0})
        log.write(epoch_record(e, 1.0))
    lines = log.path.read_text().splitlines()
    assert [json.loads(x)["type"] for x in lines] == ["train", "epoch"] * 2
    assert log.plot() == tmp_path / CURVES_PNG and (tmp_path / CURVES_PNG).is_file()


def test_a_secondary_process_writes_nothing(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path / "run", enabled=False, tensorboard=True)
    log.write(epoch_record(1))
    assert log.plot() is None and not (tmp_path / "run").exists()


def test_restore_cuts_back_or_copies_the_log(tmp_path: Path) -> None:
    old = MetricsLog(tmp_path / "old")
    old.write(epoch_record(1))
    size = old.size()
    old.write(epoch_record(2))  # written after the checkpoint
    same = MetricsLog(tmp_path / "old")
    same.restore(size, 10, None)
    assert [json.loads(x)["epoch"] for x in same.path.read_text().splitlines()] == [1]
    old.write(epoch_record(2))
    fresh = MetricsLog(tmp_path / "new")
    fresh.restore(size, 10, tmp_path / "old")
    assert fresh.path.read_text() == json.dumps(epoch_record(1)) + "\n"
    untouched = old.size()
    MetricsLog(tmp_path / "old").restore(None, 10, None)  # an old checkpoint: leave it
    assert old.size() == untouched


def test_without_tensorboard_it_warns_once_and_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # import fails
    monkeypatch.setattr(logger_module, "_warned_no_tensorboard", False)
    with caplog.at_level(logging.WARNING, logger="nmt.training.logger"):
        for run in ("a", "b"):
            log = MetricsLog(tmp_path / run, tensorboard=True)
            log.write(epoch_record(1))
            log.write(epoch_record(2))
            log.close()
            assert len(log.path.read_text().splitlines()) == 2
    warnings = [r for r in caplog.records if "TensorBoard" in r.getMessage()]
    assert len(warnings) == 1


def test_tensorboard_event_files(tmp_path: Path) -> None:
    pytest.importorskip("tensorboard", reason="tensorboard is not installed")
    log = MetricsLog(tmp_path, tensorboard=True)
    log.write(epoch_record(1, 2.0))
    log.close()
    assert list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_plain_progress_lines_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([0.0, 0.5, 1.2, 1.4, 2.5])
    monkeypatch.setattr(logger_module.time, "monotonic", lambda: next(clock))
    stream = io.StringIO()
    bar = epoch_progress(10, 2, 3, enabled=True, every_s=1.0, stream=stream)
    assert isinstance(bar, PlainProgress)
    bar.update()  # 0.5 s: too soon
    bar.set_postfix(loss="2.345", ppl="10.4", lr="1.00e-03", tok_s="1234")
    bar.update()  # 1.2 s: a line
    bar.update()  # 1.4 s: too soon after it
    bar.update()  # 2.5 s: a line
    bar.close()
    assert stream.getvalue().splitlines() == [
        "epoch 3 batch 4/10 | loss 2.345 ppl 10.4 lr 1.00e-03 tok/s 1234",
        "epoch 3 batch 6/10 | loss 2.345 ppl 10.4 lr 1.00e-03 tok/s 1234",
    ]
    assert "\r" not in stream.getvalue()


def test_a_terminal_gets_the_bar_and_other_ranks_nothing() -> None:
    assert not isinstance(
        epoch_progress(5, 0, 1, enabled=True, every_s=1.0, stream=FakeTerminal()), PlainProgress
    )
    quiet = io.StringIO()
    bar = epoch_progress(5, 0, 1, enabled=False, every_s=1e-9, stream=quiet)
    bar.update()
    bar.close()
    assert quiet.getvalue() == ""
