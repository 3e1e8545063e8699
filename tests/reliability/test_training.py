"""Issue 20's probes of training (resizing, accumulation, resume checks), of
decoding limits and streamed warnings, and the data-path items another piece
of work owns (expected to fail until it lands)."""

from __future__ import annotations

import json
import math
import shutil
import signal
import subprocess
import time
from pathlib import Path

from reliability_lab import (
    ONE_LINE,
    Lab,
    Outcome,
    environ,
    first_error,
    nmt,
    nmt_command,
    one_line_error,
    probe,
    start,
    stderr_text,
)


def _summary(run_dir: Path) -> dict[str, object]:
    path = run_dir / "summary.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


@probe(
    "train model=luong (tied embeddings) model.hidden_dim=24, emb_dim not set; "
    "then model.emb_dim=16 model.hidden_dim=24",
    "the first trains with emb 24; the contradiction stops with one line naming both keys",
)
def test_tied_resize(lab: Lab) -> Outcome:
    base = [a for a in lab.train_args(lab.root / "tied") if not a.startswith("model.")]
    args = [
        *base,
        "model=luong",
        "model.hidden_dim=24",
        "model.num_layers=1",
        "trainer.max_epochs=1",
    ]
    proc = nmt(lab, *args)
    config = {}
    if (lab.root / "tied" / "checkpoints" / "best.pt").is_file():
        import torch

        data = torch.load(lab.root / "tied/checkpoints/best.pt", weights_only=True)
        config = data["config"]["model"]
    resized = proc.returncode == 0 and config.get("emb_dim") == 24
    both = [a.replace("tied", "tied_both") for a in args] + ["model.emb_dim=16"]
    contradiction = one_line_error(nmt(lab, *both), "model.emb_dim", "model.hidden_dim")
    note = f"emb_dim of the resized run: {config.get('emb_dim')}"
    error = first_error(stderr_text(proc)) if not resized else contradiction.first_error
    return Outcome(resized and contradiction.passed, proc.returncode, error, note)


@probe("train trainer.accumulate=2 for one epoch", "exit 0; half the optimizer steps (rounded up)")
def test_accumulate(lab: Lab) -> Outcome:
    run = lab.root / "accumulate"
    proc = nmt(lab, *lab.train_args(run, "trainer.max_epochs=1", "trainer.accumulate=2"))
    batches = int(_summary(lab.run_dir)["steps"])  # type: ignore[call-overload]
    steps = _summary(run).get("steps")
    ok = proc.returncode == 0 and steps == math.ceil(batches / 2)
    note = f"{steps} steps for {batches} batches"
    return Outcome(ok, proc.returncode, first_error(stderr_text(proc)) * (not ok), note)


@probe(
    "train trainer.resume_from= the lab run with data.src_lang=fr; with tokenizer.lower=true",
    ONE_LINE + " (the changed key)",
)
def test_resume_changed_data(lab: Lab) -> Outcome:
    outcomes = []
    for key in ("data.src_lang=fr", "tokenizer.lower=true"):
        run = lab.root / f"resume_{key.split('=')[0]}"
        args = lab.train_args(
            run, "trainer.max_epochs=2", f"trainer.resume_from={lab.run_dir}", key
        )
        outcomes.append(one_line_error(nmt(lab, *args), key.split("=")[0]))
    failed = [o for o in outcomes if not o.passed]
    shown = (failed or outcomes)[0]
    return Outcome(not failed, shown.rc, shown.first_error, f"{len(failed)} of 2 went on")


def _average(lab: Lab) -> Path:
    copy = lab.root / "avg_source.pt"
    shutil.copyfile(lab.best, copy)
    out = lab.root / "averaged.pt"
    nmt(lab, "average", f"checkpoints=[{lab.best},{copy}]", f"output={out}")
    return out


@probe(
    "train trainer.resume_from= an averaged checkpoint",
    ONE_LINE + " saying it has no optimizer state and how to train on from its weights; "
    "with that advice the run trains",
)
def test_resume_from_average(lab: Lab) -> Outcome:
    averaged = _average(lab)
    args = lab.train_args(
        lab.root / "from_avg", "trainer.max_epochs=1", f"trainer.resume_from={averaged}"
    )
    outcome = one_line_error(nmt(lab, *args), "optimizer", "weights_only=true")
    again = nmt(
        lab, *[a.replace("from_avg", "from_avg2") for a in args], "trainer.weights_only=true"
    )
    outcome.passed &= again.returncode == 0
    outcome.note = f"with trainer.weights_only=true: exit {again.returncode}"
    return outcome


@probe("translate decoding=sample decoding.n_best=1000000", ONE_LINE + ", before any decoding")
def test_sampling_n_best_cap(lab: Lab) -> Outcome:
    args = ("translate", f"checkpoint={lab.best}", "decoding=sample", "decoding.n_best=1000000")
    return one_line_error(nmt(lab, *args, stdin=b"s1 s2\n"), "n_best")


@probe(
    "streamed translate (stdin a pipe): line 1 short, then line 2 over the source limit",
    "the warning names line 2 (counted from the start of the input)",
)
def test_stream_line_numbers(lab: Lab) -> Outcome:
    args = [*nmt_command(), "translate", f"checkpoint={lab.best}", "decoding=greedy"]
    proc = subprocess.Popen(
        args,
        cwd=lab.root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ(),
    )
    assert proc.stdin and proc.stdout
    proc.stdin.write(b"s1 s2\n")
    proc.stdin.flush()
    proc.stdout.readline()  # line 1 is out: line 2 comes in a batch of its own
    proc.stdin.write(b" ".join([b"s3"] * 150) + b"\n")
    proc.stdin.close()
    assert proc.stderr
    text = proc.stderr.read().decode(errors="replace")
    proc.wait(timeout=120)
    warning = next((line for line in text.splitlines() if "were cut" in line), "")
    ok = proc.returncode == 0 and warning.rstrip().endswith("line 2")
    return Outcome(ok, proc.returncode, warning[-120:], "")


def _kill_mid_epoch(lab: Lab, run_dir: Path, *extra: str) -> list[str]:
    """A run killed after its first mid-epoch save; its train arguments."""
    args = lab.train_args(run_dir, "trainer.max_epochs=2", "trainer.save_every_steps=3", *extra)
    proc = start(lab, *args, log=run_dir.with_suffix(".log"))
    last = run_dir / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 200
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    return args


@probe(
    "resume a run killed mid-epoch with trainer.batch_size changed (32 -> 16)",
    "exit 0; a warning that the epoch starts again from its first batch",
    slow=True,
)
def test_resume_changed_batch_size(lab: Lab) -> Outcome:
    run = lab.root / "batch_change"
    args = _kill_mid_epoch(lab, run, "trainer.batch_size=8")
    proc = nmt(lab, *args, "trainer.batch_size=16", f"trainer.resume_from={run}", timeout=400)
    text = stderr_text(proc) + proc.stdout.decode(errors="replace")  # train logs to stdout
    ok = proc.returncode == 0 and "starts again from its first batch" in text
    line = next((x for x in text.splitlines() if "starts again" in x), first_error(text))
    return Outcome(ok, proc.returncode, line[-200:], "")


@probe("train vocab.min_freq=1000000 (a vocabulary of specials only)", ONE_LINE)
def test_empty_vocabulary(lab: Lab) -> Outcome:
    proc = nmt(lab, *lab.train_args(lab.root / "empty_vocab", "vocab.min_freq=1000000"))
    return one_line_error(proc, "vocab.min_freq")


@probe("train data.max_train_examples=3 with batch 32", ONE_LINE)
def test_fewer_pairs_than_a_batch(lab: Lab) -> Outcome:
    args = lab.train_args(lab.root / "few_pairs", "data.max_train_examples=3")
    return one_line_error(nmt(lab, *args), "batch")


@probe("train data.max_src_len=1 (every pair filtered out)", ONE_LINE)
def test_max_src_len_one(lab: Lab) -> Outcome:
    proc = nmt(lab, *lab.train_args(lab.root / "max_len_one", "data.max_src_len=1"))
    return one_line_error(proc, "data.max_src_len")
