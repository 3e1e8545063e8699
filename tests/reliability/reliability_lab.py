"""The test bench of the reliability probes: a temp folder with a tiny
synthetic corpus, a tiny model trained there by the installed `nmt`, helpers
that run `nmt` in subprocesses and read their outcome, and :func:`probe`,
which turns a function returning an :class:`Outcome` into a test and records
what it saw for the report (``scripts/reliability.py`` writes
docs/reliability.md from it)."""

from __future__ import annotations

import functools
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ONE_LINE = "exit != 0, one `nmt X: error:` line naming it, no traceback"

WORDS = 12
SIZES = {"train": 200, "val": 30}
TINY = [
    "tokenizer=whitespace",
    "vocab.min_freq=1",
    "model=sutskever",
    "model.emb_dim=16",
    "model.hidden_dim=32",
    "model.num_layers=1",
    "trainer.batch_size=32",
    "trainer.device=cpu",
    "trainer.test_split=null",
    "trainer.val_max_examples=10",
    "decoding.max_len=20",
]
RECIPE_DECODING = ["decoding=beam", "decoding.beam_size=3"]  # the set-up run's recipe


@dataclass
class Outcome:
    """What a probe saw: the exit code, the first error line, and the verdict."""

    passed: bool
    rc: int | None = None
    first_error: str = ""
    note: str = ""


@dataclass(frozen=True)
class ProbeInfo:
    tried: str  # the bad input
    expected: str  # what nmt should do
    slow: bool  # run only when $NMT_RELIABILITY_SLOW is set (scripts/reliability.py)


OUTCOMES: dict[str, Outcome] = {}  # test name -> what its probe saw (read by conftest)


def probe(
    tried: str, expected: str, *, slow: bool = False, elsewhere: str = ""
) -> Callable[[Callable[..., Outcome | None]], Callable[..., None]]:
    """A test from a probe function: it passes when the Outcome does; None means
    the probe could not run here (a skip; the function's docstring says why).
    ``elsewhere``: an item another piece of work owns, expected to fail until it lands."""

    def wrap(func: Callable[..., Outcome | None]) -> Callable[..., None]:
        @functools.wraps(func)
        def test(*args: Any, **kwargs: Any) -> None:
            began = time.perf_counter()
            outcome = func(*args, **kwargs)
            if outcome is None:
                pytest.skip((func.__doc__ or "could not run here").strip().splitlines()[0])
            outcome.note = f"{outcome.note} ({time.perf_counter() - began:.1f} s)".strip()
            OUTCOMES[func.__name__] = outcome
            assert outcome.passed, f"{func.__name__}: {outcome}"

        test.probe = ProbeInfo(tried, expected, slow)  # type: ignore[attr-defined]
        if elsewhere:
            return pytest.mark.xfail(reason=elsewhere, strict=False)(test)  # type: ignore[no-any-return]
        return test

    return wrap


def nmt_command() -> list[str]:
    """The `nmt` console script next to this Python, else ``python -m nmt``."""
    exe = Path(sys.executable).with_name("nmt")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "nmt"]


@dataclass
class Lab:
    root: Path
    memo: dict[str, Any] = field(default_factory=dict)

    @property
    def run_dir(self) -> Path:
        return self.root / "run"

    @property
    def best(self) -> Path:
        return self.run_dir / "checkpoints" / "best.pt"

    def data(self, **files: Path) -> list[str]:
        """``data=files`` overrides for the synthetic corpus (``files`` replace some)."""
        keys = ["data=files"]
        for split in SIZES:
            for side in ("src", "tgt"):
                path = files.get(f"{split}_{side}", self.root / "corpus" / f"{split}.{side}")
                keys.append(f"data.{split}_{side}={path}")
        return keys

    def train_args(self, run_dir: Path, *extra: str, **files: Path) -> list[str]:
        return ["train", *self.data(**files), *TINY, f"hydra.run.dir={run_dir}", *extra]


def environ(**extra: str) -> dict[str, str]:
    """The environment of every `nmt` run: one thread, no data dir, unbuffered."""
    env = {k: v for k, v in os.environ.items() if k not in ("NMT_DATA_DIR", "HYDRA_FULL_ERROR")}
    return env | {"OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"} | extra


def nmt(
    lab: Lab, *args: str, stdin: bytes | None = None, timeout: float = 120, **env: str
) -> subprocess.CompletedProcess[bytes]:
    """Run the installed ``nmt ARGS`` in the lab folder."""
    try:
        return subprocess.run(
            [*nmt_command(), *args],
            cwd=lab.root,
            input=stdin,
            capture_output=True,
            env=environ(**env),
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        return subprocess.CompletedProcess(exc.cmd, -9, exc.output or b"", b"timed out")


def start(lab: Lab, *args: str, log: Path) -> subprocess.Popen[bytes]:
    """Start ``nmt ARGS`` with its stdout and stderr going to ``log``."""
    with log.open("wb") as handle:
        return subprocess.Popen(
            [*nmt_command(), *args], cwd=lab.root, env=environ(), stdout=handle, stderr=handle
        )


def stderr_text(proc: subprocess.CompletedProcess[bytes]) -> str:
    return proc.stderr.decode("utf-8", errors="replace")


def first_error(text: str) -> str:
    """The line that says what went wrong: nmt's one-line error, else the last line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    lines = [line for line in lines if not line.startswith("Set the environment variable HYDRA")]
    for line in lines:
        if line.startswith("nmt ") and "error" in line:
            return line[:200]
    return lines[-1][:200] if lines else ""


def one_line_error(proc: subprocess.CompletedProcess[bytes], *needles: str) -> Outcome:
    """PASS when ``nmt`` failed (rc != 0) with one ``nmt X: error:`` line, no
    traceback, and every one of ``needles`` in that line."""
    text = stderr_text(proc)
    line = first_error(text)
    ok = (
        proc.returncode != 0
        and "Traceback" not in text
        and line.startswith("nmt ")
        and all(n in line for n in needles)
    )
    if proc.returncode == 0:
        return Outcome(False, 0, "", "no error: it went on")
    return Outcome(ok, proc.returncode, line)


def write_corpus(folder: Path, seed: int = 1234) -> None:
    """The reverse-and-map task: the target is the source backwards, s<i> -> T<i>."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split, count in SIZES.items():
        src, tgt = [], []
        for _ in range(count):
            ids = [rng.randrange(WORDS) for _ in range(rng.randint(2, 6))]
            src.append(" ".join(f"s{i}" for i in ids))
            tgt.append(" ".join(f"T{i}" for i in reversed(ids)))
        (folder / f"{split}.src").write_text("\n".join(src) + "\n", encoding="utf-8")
        (folder / f"{split}.tgt").write_text("\n".join(tgt) + "\n", encoding="utf-8")


def set_up(root: Path) -> Lab:
    """The corpus and one tiny trained run (its stderr kept for the log probes)."""
    lab = Lab(root)
    write_corpus(root / "corpus")
    extra = ["trainer.max_epochs=1", "threads=1", "trainer.progress_every_s=0.000001"]
    extra += RECIPE_DECODING
    began = time.perf_counter()
    proc = nmt(lab, *lab.train_args(lab.run_dir, *extra), timeout=300, OMP_NUM_THREADS="2")
    lab.memo["setup"] = proc
    lab.memo["setup_s"] = time.perf_counter() - began
    if proc.returncode != 0 or not lab.best.is_file():
        pytest.fail(f"the tiny training run failed:\n{stderr_text(proc)[-3000:]}")
    return lab
