"""`threads` reaches torch in a real `nmt train`, a joblib sweep splits the
cores among its jobs, summary.json records the count (issue 15, item 10);
a log redirected to a file gets plain progress lines (issue 13, item 7)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from train_runs import NMT, environ, run_train, tiny_run_args

from nmt.utils import cpu_cores

ONE_EPOCH = {"trainer.max_epochs": 1, "trainer.save_every_steps": "null"}


def summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))


def test_threads_key_beats_omp_num_threads(synthetic_corpus: Any, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = tiny_run_args(synthetic_corpus, **ONE_EPOCH)
    run_train([*args, "threads=2", f"hydra.run.dir={run_dir}"], tmp_path)  # OMP=1
    assert summary(run_dir)["cpu_threads"] == 2


@pytest.mark.slow
def test_joblib_sweep_splits_the_cores(synthetic_corpus: Any, tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_joblib_launcher")
    sweep = tmp_path / "sweep"
    command = [
        str(NMT),
        "train",
        "-m",
        "hydra/launcher=joblib",
        "hydra.launcher.n_jobs=2",
        f"hydra.sweep.dir={sweep}",
        *tiny_run_args(synthetic_corpus, **ONE_EPOCH),
        "trainer.seed=1,2",
    ]
    env = {k: v for k, v in environ().items() if k != "OMP_NUM_THREADS"}
    proc = subprocess.run(
        command, cwd=tmp_path, env=env, capture_output=True, timeout=400, check=False
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-3000:]
    counts = [summary(sweep / str(job))["cpu_threads"] for job in (0, 1)]
    assert counts == [max(1, cpu_cores() // 2)] * 2


def test_a_redirected_log_has_plain_progress_lines(synthetic_corpus: Any, tmp_path: Path) -> None:
    """Issue 13, item 7: stderr to a file gets no tqdm bar, no carriage return."""
    run_dir = tmp_path / "run"
    args = tiny_run_args(synthetic_corpus, **ONE_EPOCH, **{"trainer.progress_every_s": 1e-6})
    err = run_train([*args, f"hydra.run.dir={run_dir}"], tmp_path)
    assert "\r" not in err
    lines = [line for line in err.splitlines() if line.startswith("epoch 1 batch ")]
    assert len(lines) >= 5, err[-2000:]
    assert "| loss " in lines[-1] and " tok/s " in lines[-1]
    assert "epoch 1 batch " not in (run_dir / "train.log").read_text(encoding="utf-8")
