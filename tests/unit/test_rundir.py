"""Tests for nmt.training.rundir: one run per run dir, no silent overwrite."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from nmt.checkpoint import save_checkpoint
from nmt.training.rundir import (
    LOCK_FILE,
    RunDirError,
    RunDirLock,
    check_fresh_run_dir,
    claim_run_dir,
)


def test_the_holding_process_gets_its_own_lock_again(tmp_path: Path) -> None:
    first = RunDirLock(tmp_path).acquire()
    assert RunDirLock(tmp_path / ".." / tmp_path.name).acquire() is first
    assert (tmp_path / LOCK_FILE).read_text().strip() == str(os.getpid())
    first.release()
    assert (tmp_path / LOCK_FILE).read_text() == ""
    second = RunDirLock(tmp_path).acquire()
    assert second is not first
    second.release()


def test_lock_held_by_another_process_names_its_pid(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import sys, time
                from nmt.training.rundir import RunDirLock
                RunDirLock({str(tmp_path)!r}).acquire()
                print("locked", flush=True)
                time.sleep(60)
                """
            ),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == b"locked"
        with pytest.raises(RunDirError, match=f"pid {holder.pid}"):
            RunDirLock(tmp_path).acquire()
    finally:
        holder.kill()
        holder.wait()
    # the holder died without releasing: its lock file blocks nothing
    assert (tmp_path / LOCK_FILE).read_text().strip() == str(holder.pid)
    RunDirLock(tmp_path).acquire().release()


def a_finished_run(run: Path) -> Path:
    save_checkpoint({"model": {}}, run / "checkpoints" / "last.pt")
    (run / "metrics.jsonl").write_text('{"type": "epoch"}\n')
    (run / "summary.json").write_text("{}\n")
    return run


def test_an_empty_dir_or_hydra_files_alone_are_fresh(tmp_path: Path) -> None:
    (tmp_path / ".hydra").mkdir()
    (tmp_path / "train.log").write_text("log\n")
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "metrics.jsonl").write_text("")
    check_fresh_run_dir(tmp_path, resume_from=None, overwrite=False)


def test_a_dir_holding_a_run_is_refused_with_both_ways_forward(tmp_path: Path) -> None:
    run = a_finished_run(tmp_path / "run")
    with pytest.raises(RunDirError) as err:
        check_fresh_run_dir(run, resume_from=None, overwrite=False)
    message = str(err.value)
    assert "\n" not in message
    assert f"trainer.resume_from={run}" in message and "trainer.overwrite=true" in message
    assert (run / "checkpoints" / "last.pt").is_file()


def test_resume_in_place_is_allowed_and_resume_from_elsewhere_is_not(tmp_path: Path) -> None:
    run = a_finished_run(tmp_path / "run")
    other = a_finished_run(tmp_path / "other")
    check_fresh_run_dir(run, resume_from=str(run), overwrite=False)
    check_fresh_run_dir(run, resume_from=str(run / "checkpoints" / "last.pt"), overwrite=False)
    with pytest.raises(RunDirError):
        check_fresh_run_dir(run, resume_from=str(other), overwrite=False)
    with pytest.raises(RunDirError, match="would delete"):
        check_fresh_run_dir(run, resume_from=str(run), overwrite=True)


def test_overwrite_deletes_the_old_outputs_and_keeps_hydras(tmp_path: Path) -> None:
    run = a_finished_run(tmp_path / "run")
    (run / ".hydra").mkdir()
    lock = claim_run_dir(run, resume_from=None, overwrite=True)
    lock.release()
    assert sorted(p.name for p in run.iterdir()) == [".hydra", LOCK_FILE]


def test_a_refused_claim_releases_the_lock(tmp_path: Path) -> None:
    run = a_finished_run(tmp_path / "run")
    with pytest.raises(RunDirError):
        claim_run_dir(run, resume_from=None, overwrite=False)
    RunDirLock(run).acquire().release()


def test_default_run_dirs_differ_within_one_second() -> None:
    """Two runs started in the same second must not share the default run dir."""
    import re

    from hydra import compose, initialize_config_module
    from omegaconf import OmegaConf

    from nmt.config import register_configs

    register_configs()
    with initialize_config_module(config_module="nmt.configs", version_base="1.3"):
        cfg = compose(config_name="train", return_hydra_config=True)
    for key in ("hydra.run.dir", "hydra.sweep.dir"):
        name = Path(str(OmegaConf.select(cfg, key))).name
        assert re.fullmatch(r"\d\d-\d\d-\d\d\.\d{6}", name), name
