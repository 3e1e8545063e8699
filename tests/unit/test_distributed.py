"""Tests for nmt.training.distributed outside a process group, and the CLI's
overrides for torchrun's secondary processes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from nmt.cli import worker_overrides
from nmt.training.distributed import Distributed, setup, world_from_env, wrap_model

TORCHRUN = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
SLURM = ("SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID", "SLURM_STEP_ID", "SLURM_JOB_ID")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in TORCHRUN + SLURM:
        # set, then deleted: monkeypatch records the key, so what the code under test
        # writes to os.environ (world_from_env fills in torchrun's variables) is undone
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)


def test_a_single_process_is_a_no_op(tmp_path: Path) -> None:
    ctx = setup("cpu")
    assert (ctx.rank, ctx.world_size, ctx.is_main, ctx.enabled) == (0, 1, True, False)
    assert ctx.any([False, True]) == [False, True]
    values = torch.tensor([1.0, 2.0])
    assert ctx.sum(values) is values and ctx.broadcast({"a": 1}) == {"a": 1}
    assert ctx.gather(3) == [3]
    assert ctx.shared_run_dir(tmp_path) == tmp_path and tmp_path.is_dir()
    model = torch.nn.Linear(2, 2)
    assert wrap_model(model, ctx) is model


def test_torchrun_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert world_from_env() == (3, 4, 1)


def test_slurm_tasks_of_an_srun_step(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in {
        "SLURM_NTASKS": "8",
        "SLURM_PROCID": "5",
        "SLURM_LOCALID": "1",
        "SLURM_STEP_ID": "0",
        "SLURM_JOB_ID": "123456",
        "MASTER_ADDR": "node01",
    }.items():
        monkeypatch.setenv(key, value)
    assert world_from_env() == (5, 8, 1)
    assert os.environ["WORLD_SIZE"] == "8" and os.environ["MASTER_PORT"] == str(20000 + 3456)


def test_a_slurm_allocation_alone_is_one_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLURM_NTASKS", "4")  # salloc shell: no srun step, one process
    monkeypatch.setenv("SLURM_PROCID", "0")
    assert world_from_env() == (0, 1, 0)


def test_secondary_processes_write_no_hydra_files(monkeypatch: pytest.MonkeyPatch) -> None:
    assert worker_overrides(["a=1"]) == []
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert worker_overrides([]) == []
    monkeypatch.setenv("RANK", "1")
    assert worker_overrides([]) == ["hydra.output_subdir=null", "hydra/job_logging=stdout"]
    assert worker_overrides(["hydra/job_logging=none"]) == ["hydra.output_subdir=null"]


def test_distributed_defaults() -> None:
    ctx = Distributed()
    assert ctx.device.type == "cpu" and not ctx.enabled
