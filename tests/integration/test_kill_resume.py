"""A run killed mid-epoch and resumed ends exactly where an uninterrupted run does.

`nmt train` on CPU with a fixed seed, dropout and teacher forcing 0.5 (so every
random stream counts), checkpoints every 4 steps: killed with SIGKILL after a
few steps, then resumed in the same run dir, its final weights equal the
uninterrupted run's bit for bit and its metrics.jsonl holds the same records
(timing fields aside).  SIGTERM saves last.pt at the step it arrives, and exits
with 128 + 15 and one line that says how to resume.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from train_runs import (
    SIGKILL,
    SIGTERM,
    assert_same_weights,
    finish,
    records,
    run_train,
    signal_after_step,
    start_nmt,
    timeless,
    tiny_run_args,
)

from nmt.checkpoint import load_checkpoint

pytestmark = pytest.mark.slow
STEPS_PER_EPOCH = 19  # 300 pairs in batches of 16
EPOCHS = 3


@pytest.fixture(scope="module")
def straight(synthetic_corpus, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The uninterrupted run."""
    root = tmp_path_factory.mktemp("straight")
    run_train([*tiny_run_args(synthetic_corpus), f"hydra.run.dir={root / 'run'}"], root)
    assert records(root / "run")[-1]["step"] == STEPS_PER_EPOCH * EPOCHS
    return root / "run"


def resume(corpus, run: Path) -> None:
    run_train(
        [*tiny_run_args(corpus), f"hydra.run.dir={run}", f"trainer.resume_from={run}"], run.parent
    )


def test_sigkill_then_resume_matches_the_uninterrupted_run(
    synthetic_corpus, straight: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    proc = start_nmt([*tiny_run_args(synthetic_corpus), f"hydra.run.dir={run}"], tmp_path)
    signal_after_step(proc, run, 5, SIGKILL)
    rc, _ = finish(proc)
    assert rc == -SIGKILL
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["trainer_state"]
    assert saved["step"] < STEPS_PER_EPOCH * EPOCHS
    assert saved["step"] % 4 == 0 and saved["batch_in_epoch"] > 0, saved  # mid-epoch
    assert records(run)[-1]["step"] >= saved["step"]  # records past the checkpoint, to cut

    resume(synthetic_corpus, run)
    assert_same_weights(run / "checkpoints" / "last.pt", straight / "checkpoints" / "last.pt")
    assert timeless(run) == timeless(straight)
    assert (run / "learning_curves.png").is_file()


def test_sigterm_saves_last_pt_at_the_current_step(
    synthetic_corpus, straight: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    args = [*tiny_run_args(synthetic_corpus, **{"trainer.save_every_steps": 100})]
    proc = start_nmt([*args, f"hydra.run.dir={run}"], tmp_path)
    signal_after_step(proc, run, 5, SIGTERM)
    rc, err = finish(proc)
    assert rc == 128 + SIGTERM, err[-2000:]
    last_line = err.strip().splitlines()[-1]
    assert "stopped by SIGTERM" in last_line and f"trainer.resume_from={run}" in last_line
    saved = load_checkpoint(run / "checkpoints" / "last.pt")["trainer_state"]
    assert saved["step"] == records(run)[-1]["step"] >= 5  # the step it stopped at

    run_train([*args, f"hydra.run.dir={run}", f"trainer.resume_from={run}"], tmp_path)
    assert_same_weights(run / "checkpoints" / "last.pt", straight / "checkpoints" / "last.pt")
    assert [r["step"] for r in records(run)] == [r["step"] for r in records(straight)]
