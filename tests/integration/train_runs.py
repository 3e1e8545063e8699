"""`nmt train` runs in subprocesses, for the kill/resume and multi-process tests.

Imported by those tests (pytest puts this folder on ``sys.path``).  The runs
train a tiny model on conftest's synthetic corpus, on CPU, with dropout and
teacher forcing < 1, so that every random stream matters to the result.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from nmt.checkpoint import load_checkpoint

NMT = Path(sys.executable).with_name("nmt")
TIMING = {"epoch_time_s", "tokens_per_s", "elapsed_s", "rss_mb"}  # measured, not computed


def tiny_run_args(corpus: Any, **overrides: object) -> list[str]:
    """Overrides for a short, random-number-hungry run on the synthetic corpus."""
    options: dict[str, object] = {
        "tokenizer": "whitespace",
        "vocab.min_freq": 1,
        "model.emb_dim": 32,
        "model.hidden_dim": 64,
        "model.tie_embeddings": "false",  # model/luong.yaml ties; these sizes differ
        "model.num_layers": 1,
        "model.dropout": 0.3,
        "trainer.batch_size": 16,
        "trainer.teacher_forcing": 0.5,
        "trainer.device": "cpu",
        "trainer.test_split": "null",
        "trainer.max_epochs": 3,
        "trainer.val_max_examples": 10,
        "trainer.log_every_steps": 1,
        "trainer.save_every_steps": 4,
        "trainer.seed": 7,
    }
    options.update(overrides)
    data = [o for o in corpus.overrides() if "test_" not in o]
    return [*data, *(f"{key}={value}" for key, value in options.items())]


def environ(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NMT_DATA_DIR", "HYDRA_FULL_ERROR")}
    return env | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"} | extra


def start(command: list[str], cwd: Path, **env: str) -> subprocess.Popen[bytes]:
    """Start ``command`` with its output in a file (a pipe nobody reads could fill
    up and stall it); :func:`finish` reads it."""
    cwd.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=cwd, prefix="output-", suffix=".txt")
    proc = subprocess.Popen(
        command, cwd=cwd, env=environ(**env), stdout=fd, stderr=subprocess.STDOUT
    )
    os.close(fd)
    proc.output_path = name  # type: ignore[attr-defined]
    return proc


def start_nmt(args: list[str], cwd: Path, **env: str) -> subprocess.Popen[bytes]:
    if not NMT.is_file():
        pytest.fail(f"the nmt console script is not installed next to {sys.executable}")
    return start([str(NMT), "train", *args], cwd, **env)


def finish(proc: subprocess.Popen[bytes], timeout: float = 240) -> tuple[int, str]:
    """Wait for ``proc``; (return code, its stdout and stderr)."""
    timed_out = False
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        proc.kill()
        proc.wait()
    path = Path(proc.output_path)  # type: ignore[attr-defined]
    text = path.read_text(encoding="utf-8", errors="replace")
    if timed_out:
        pytest.fail(f"{proc.args} did not finish in {timeout}s:\n{text[-3000:]}")
    return proc.returncode, text


def run_train(args: list[str], cwd: Path, timeout: float = 240) -> str:
    rc, err = finish(start_nmt(args, cwd), timeout)
    assert rc == 0, f"rc={rc}\n{err[-3000:]}"
    return err


def records(run_dir: Path) -> list[dict[str, Any]]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.endswith("}")]


def timeless(run_dir: Path) -> list[dict[str, Any]]:
    """The metrics records without their timing fields."""
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records(run_dir)]


def signal_after_step(
    proc: subprocess.Popen[bytes], run_dir: Path, step: int, signum: int, timeout: float = 240
) -> None:
    """Send ``signum`` as soon as metrics.jsonl shows optimizer step ``step``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"the run ended (rc={proc.returncode}) before step {step}")
        if any(r["step"] >= step for r in records(run_dir)):
            proc.send_signal(signum)
            return
        time.sleep(0.005)
    proc.kill()
    pytest.fail(f"no step {step} within {timeout}s")


def assert_same_weights(a: Path, b: Path) -> None:
    first, second = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    assert first.keys() == second.keys()
    for key, value in first.items():
        assert torch.equal(value, second[key]), key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


SIGKILL, SIGTERM = signal.SIGKILL, signal.SIGTERM
