"""Two training processes on CPU (gloo): DistributedDataParallel through `nmt train`.

Under torchrun both processes run the Hydra app; they must end up in one run
dir (rank 0's), where only rank 0 writes metrics and checkpoints, and a run
resumes from there.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from train_runs import (
    finish,
    free_port,
    records,
    start,
    start_nmt,
    tiny_run_args,
)

from nmt.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow
BATCHES = 10  # 300 pairs in batches of 32: 5 per process and epoch
DDP_ARGS = {"trainer.batch_size": 32, "trainer.max_epochs": 2, "trainer.log_every_steps": 2}


def torchrun(args: list[str], cwd: Path) -> str:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "nmt",
        "train",
        *args,
    ]
    rc, text = finish(start(command, cwd), timeout=300)
    assert rc == 0, text[-4000:]
    return text


def test_torchrun_two_processes_share_one_run_dir_and_resume(
    synthetic_corpus, tmp_path: Path
) -> None:
    torchrun(tiny_run_args(synthetic_corpus, **DDP_ARGS), tmp_path)
    runs = [p for p in (tmp_path / "outputs").glob("*/*") if p.is_dir()]
    assert len(runs) == 1, runs  # no run dir of rank 1's own
    run = runs[0]
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["best.pt", "last.pt"]
    found = records(run)
    steps = [(r["type"], r["step"]) for r in found]
    assert len(steps) == len(set(steps))  # one writer: no record twice
    assert [r["step"] for r in found if r["type"] == "epoch"] == [5, 10]
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert last["trainer_state"]["world_size"] == 2 and len(last["rng_per_rank"]) == 2
    assert last["rng_per_rank"][0]["torch"].ne(last["rng_per_rank"][1]["torch"]).any()

    more = {**DDP_ARGS, "trainer.max_epochs": 3}
    resumed = [f"hydra.run.dir={run}", f"trainer.resume_from={run}"]
    torchrun([*tiny_run_args(synthetic_corpus, **more), *resumed], tmp_path)
    assert [r["step"] for r in records(run) if r["type"] == "epoch"] == [5, 10, 15]
    assert load_checkpoint(run / "checkpoints" / "last.pt")["trainer_state"]["epoch"] == 3


def test_every_rank_uses_rank_0s_run_dir(synthetic_corpus, tmp_path: Path) -> None:
    """Launched by hand with a different hydra.run.dir each (as two processes whose
    clocks tick over between them would compute): all goes to rank 0's."""
    port = str(free_port())
    procs = []
    for rank in (0, 1):
        env = {
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
            "WORLD_SIZE": "2",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
        }
        args = tiny_run_args(synthetic_corpus, **{**DDP_ARGS, "trainer.max_epochs": 1})
        procs.append(
            start_nmt([*args, f"hydra.run.dir={tmp_path / f'rank{rank}'}"], tmp_path, **env)
        )
    results = [finish(proc, timeout=300) for proc in procs]
    for rc, text in results:
        assert rc == 0, text[-4000:]
    assert not (tmp_path / "rank1").exists()
    run = tmp_path / "rank0"
    assert (run / ".hydra" / "config.yaml").is_file() and (
        run / "checkpoints" / "last.pt"
    ).is_file()
    assert [r["step"] for r in records(run) if r["type"] == "epoch"] == [BATCHES // 2]
    assert "epoch 1:" not in results[1][1]  # rank 1 stays quiet: no progress bar, no info log


def test_torchrun_with_gradient_accumulation(synthetic_corpus, tmp_path: Path) -> None:
    """trainer.accumulate=2 under DDP: 5 batches per process and epoch make 3
    optimizer steps (the inner batches skip the all-reduce: no_sync)."""
    args = {**DDP_ARGS, "trainer.max_epochs": 1, "trainer.accumulate": 2}
    torchrun(tiny_run_args(synthetic_corpus, **args), tmp_path)
    (run,) = [p for p in (tmp_path / "outputs").glob("*/*") if p.is_dir()]
    assert [r["step"] for r in records(run) if r["type"] == "epoch"] == [3]
