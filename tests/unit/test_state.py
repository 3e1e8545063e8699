"""Tests for nmt.training.state and nmt.training.checkpointing: what checkpoints
hold and which files are kept."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from nmt.checkpoint import (
    LAST,
    CheckpointError,
    load_checkpoint,
    resolve_checkpoint,
    run_dir_of,
    save_checkpoint,
)
from nmt.config import BestMetric, DeviceChoice, TrainerConfig
from nmt.data.batching import BucketBatchSampler, EpochBatches
from nmt.data.pipeline import TextPipeline
from nmt.training.checkpointing import (
    Checkpointer,
    CheckpointFiles,
    TrainingParts,
    capture_rng,
    restore_rng,
)
from nmt.training.distributed import Distributed
from nmt.training.logger import MetricsLog
from nmt.training.state import Sums, TrainState
from nmt.training.trainer import Trainer

CPU = torch.device("cpu")


def draws() -> tuple[float, float, float, float]:
    return random.random(), random.gauss(0, 1), float(np.random.rand()), float(torch.rand(()))


def test_rng_round_trip_through_a_weights_only_checkpoint(tmp_path: Path) -> None:
    random.seed(3)
    np.random.seed(3)
    torch.manual_seed(3)
    random.gauss(0, 1)  # leaves a cached second gaussian in Python's state
    np.random.standard_normal()
    state = capture_rng()
    expected = draws()
    draws()  # move every generator on
    save_checkpoint({"rng": state}, tmp_path / "rng.pt")
    loaded = torch.load(tmp_path / "rng.pt", weights_only=True)["rng"]
    numpy_state = loaded["numpy"]
    assert isinstance(numpy_state["keys"], list) and isinstance(numpy_state["keys"][0], int)
    assert isinstance(numpy_state["pos"], int) and isinstance(loaded["python"], list)
    restore_rng(loaded)
    assert draws() == expected


def test_train_state_reads_older_checkpoints() -> None:
    old = {"epoch": 2, "step": 40, "best_score": -1.5, "best_epoch": 1, "elapsed_s": 9.0}
    state = TrainState.from_dict(old)
    assert (state.epoch, state.step, state.batch_in_epoch) == (2, 40, 0)
    assert state.metrics_bytes is None and state.epoch_sums == Sums()
    full = TrainState(epoch=1, step=7, batch_in_epoch=3, epoch_sums=Sums(2.0, 2.5, 9, 0.1))
    assert TrainState.from_dict(full.to_dict() | {"from_the_future": 1}) == full


def test_keep_last_keeps_the_newest_snapshots_as_links(tmp_path: Path) -> None:
    files = CheckpointFiles(tmp_path / "checkpoints", keep_last=2)
    for step in (5, 10, 15, 1000):
        files.save({"step": step}, step, best=step == 10, snapshot=True)
    names = sorted(p.name for p in files.directory.iterdir())
    assert names == ["best.pt", "last.pt", "step_000015.pt", "step_001000.pt"]
    assert load_checkpoint(files.best)["step"] == 10
    assert load_checkpoint(files.last)["step"] == 1000
    assert files.snapshot(1000).samefile(files.last)  # one write, two names
    files.save({"step": 1005}, 1005, best=False, snapshot=False)  # e.g. on SIGTERM
    assert load_checkpoint(files.snapshot(1000))["step"] == 1000  # the link is unharmed
    assert load_checkpoint(files.last)["step"] == 1005


def test_keep_last_zero_writes_no_snapshots(tmp_path: Path) -> None:
    files = CheckpointFiles(tmp_path, keep_last=0)
    files.save({"step": 1}, 1, best=False, snapshot=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_resolve_resume_path(tmp_path: Path) -> None:
    run = tmp_path / "run"
    save_checkpoint({"a": 1}, run / "checkpoints" / "last.pt")
    assert resolve_checkpoint(run, LAST) == run / "checkpoints" / "last.pt"
    assert resolve_checkpoint(run / "checkpoints", LAST) == run / "checkpoints" / "last.pt"
    assert run_dir_of(run / "checkpoints" / "last.pt") == run.resolve()
    with pytest.raises(CheckpointError, match="no checkpoint"):
        resolve_checkpoint(tmp_path / "elsewhere", LAST)


def test_a_mid_epoch_checkpoint_holds_everything(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: list
) -> None:
    model = make_tiny_model()
    cfg = TrainerConfig(
        max_epochs=1,
        max_steps=5,
        batch_size=32,
        device=DeviceChoice.cpu,
        best_metric=BestMetric.loss,
        test_split=None,
        save_every_steps=3,
        keep_last=5,
        log_every_steps=2,
    )
    optimizer = torch.optim.Adam(model.parameters())
    trainer = Trainer(
        model,
        optimizer,
        torch.optim.lr_scheduler.StepLR(optimizer, step_size=1),
        cfg,
        device=CPU,
        out_dir=tmp_path,
        validate=lambda m: {"val_loss": 1.0, "val_ppl": math.e},
        checkpoint_data={"config": {"name": "x"}, **tiny_pipeline.state()},
    )
    vocab = tiny_pipeline.tgt_vocab
    sampler = BucketBatchSampler([len(s) for s, _ in tiny_examples], 32, shuffle=True, seed=0)
    trainer.fit(
        EpochBatches(
            tiny_examples,
            sampler,
            pad_idx=vocab.pad_idx,
            bos_idx=vocab.bos_idx,
            eos_idx=vocab.eos_idx,
        )
    )
    mid = load_checkpoint(tmp_path / "checkpoints" / "step_000003.pt")  # weights_only
    for key in ("model", "optimizer", "scheduler", "scaler", "rng", "config", "src_vocab"):
        assert key in mid, key
    assert set(mid["rng"]) >= {"python", "numpy", "torch"}
    state = mid["trainer_state"]
    assert (state["epoch"], state["step"], state["batch_in_epoch"]) == (0, 3, 3)
    assert state["epoch_sums"]["tokens"] > 0 and state["window_sums"]["tokens"] > 0
    assert state["metrics_bytes"] > 0  # the step-2 log record was written before
    end = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert end["trainer_state"]["step"] == 5 and end["trainer_state"]["batch_in_epoch"] == 0
    assert TextPipeline.from_state(end).tgt_vocab.to_dict() == vocab.to_dict()


def checkpointer(model: torch.nn.Module, run_dir: Path) -> Checkpointer:
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    return Checkpointer(
        TrainingParts(model, optimizer, None, torch.amp.GradScaler("cpu", enabled=False)),
        run_dir,
        keep_last=0,
        dist=Distributed(device=CPU),
        device=CPU,
        metrics=MetricsLog(run_dir),
        extra={"config": {"name": "x"}},
    )


def test_checkpointer_writes_the_payload_keys_old_checkpoints_have(tmp_path: Path) -> None:
    torch.manual_seed(0)
    saver = checkpointer(torch.nn.Linear(3, 2), tmp_path / "run")
    saver.parts.model(torch.ones(1, 3)).sum().backward()
    saver.parts.optimizer.step()
    state = TrainState(epoch=1, step=4, batch_in_epoch=2, best_score=-1.0, best_epoch=1)
    saver.save(state, {"val_loss": 1.0}, best=True, snapshot=False)
    data = load_checkpoint(tmp_path / "run")  # the run dir's best.pt
    assert set(data) == {
        "format",
        "version",
        "model",
        "optimizer",
        "scheduler",
        "scaler",
        "trainer_state",
        "val_metrics",
        "rng",
        "rng_per_rank",
        "config",
    }
    expected = draws()  # what the generators give right after the save

    torch.manual_seed(5)
    loader = checkpointer(torch.nn.Linear(3, 2), tmp_path / "run")
    resumed, val = loader.resume(tmp_path / "run")  # the run dir's last.pt
    assert (resumed.epoch, resumed.step, resumed.batch_in_epoch) == (1, 4, 2)
    assert val == {"val_loss": 1.0} and draws() == expected
    for key, value in saver.parts.model.state_dict().items():
        assert torch.equal(loader.parts.model.state_dict()[key], value), key
    saved_moments = saver.parts.optimizer.state_dict()["state"]
    loaded_moments = loader.parts.optimizer.state_dict()["state"]
    assert saved_moments.keys() == loaded_moments.keys() and saved_moments
    for index, moments in saved_moments.items():
        assert torch.equal(loaded_moments[index]["exp_avg"], moments["exp_avg"]), index
