"""`nmt train` into a run dir that is in use or holds a run: refused in one line."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from train_runs import SIGKILL, finish, records, run_train, start_nmt, tiny_run_args

pytestmark = pytest.mark.slow


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def test_finished_run_is_not_overwritten_unless_asked(synthetic_corpus, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [*tiny_run_args(synthetic_corpus, **{"trainer.max_epochs": 1}), f"hydra.run.dir={run}"]
    run_train(args, tmp_path)
    before = (run / "metrics.jsonl").read_bytes()
    best = (run / "checkpoints" / "best.pt").stat().st_mtime_ns
    hydra_files = {p.name: p.read_bytes() for p in (run / ".hydra").iterdir()}
    log = (run / "train.log").read_bytes()
    rc, out = finish(start_nmt([*args, "name=second"], tmp_path))
    assert rc == 1
    line = last_line(out)
    assert line.startswith("nmt train: error:") and str(run) in line
    assert f"trainer.resume_from={run}" in line and "trainer.overwrite=true" in line
    assert (run / "metrics.jsonl").read_bytes() == before
    assert (run / "checkpoints" / "best.pt").stat().st_mtime_ns == best
    # the refused run wrote nothing: the config Hydra saved and the log are the first run's
    assert {p.name: p.read_bytes() for p in (run / ".hydra").iterdir()} == hydra_files
    assert (run / "train.log").read_bytes() == log
    run_train([*args, "trainer.overwrite=true"], tmp_path)
    assert [r["epoch"] for r in records(run) if r["type"] == "epoch"] == [1]


def test_second_training_into_a_busy_dir_is_refused(synthetic_corpus, tmp_path: Path) -> None:
    run = tmp_path / "run"
    args = [*tiny_run_args(synthetic_corpus, **{"trainer.max_epochs": 200}), f"hydra.run.dir={run}"]
    first = start_nmt(args, tmp_path)
    try:
        deadline = time.monotonic() + 120
        while not (run / "checkpoints" / "last.pt").is_file() and time.monotonic() < deadline:
            time.sleep(0.2)
        rc, out = finish(start_nmt([*args, "trainer.overwrite=true"], tmp_path / "second"))
        assert rc == 1
        line = last_line(out)
        assert str(run) in line and f"pid {first.pid}" in line and "in use" in line
    finally:
        first.send_signal(SIGKILL)
        finish(first)
    # the dead run's lock file does not block its resume
    resumed = [*args[:-1], "trainer.max_epochs=1", f"hydra.run.dir={run}"]
    rc, out = finish(start_nmt([*resumed, f"trainer.resume_from={run}"], tmp_path))
    assert rc == 0 and "in use" not in out, out[-2000:]
