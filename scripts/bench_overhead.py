#!/usr/bin/env python
"""What training robustness costs on CPU: checkpoint saves and two processes (DDP).

    python scripts/bench_overhead.py [--steps 12] [--saves 5] [--save-every 100]
        [--ddp-pairs 6000] [--ddp-repeats 2] [--skip-ddp] [--out docs/performance.md]

1. Checkpointing.  The default recipe's model (composed with Hydra, as `nmt
   train` would build it) with Multi30k de->en vocabulary sizes (min_freq 2:
   7,853 / 5,893) trains on synthetic batches of 128 sentences; the median
   time of a training step is set against the median time of
   ``Trainer.save()`` (finiteness check, RNG states, state dicts, torch.save,
   fsync, rename).  With one save every ``--save-every`` steps, the save costs
   ``save / (save_every * step)`` of the training time.
2. DDP on CPU.  `nmt train` on a synthetic corpus (tiny model, 1 epoch),
   launched by torchrun with 1 and with 2 processes (gloo, one thread each),
   alternating, ``--ddp-repeats`` times; tokens/s is the epoch record's
   (all processes' target tokens over rank 0's training time).

The figures go to the section of docs/performance.md between
``<!-- overhead:start -->`` and ``<!-- overhead:end -->`` (replaced whole);
the rest of the file is left as it is.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import command_line, compose_train_config, machine, update_file_section

from nmt.config import DeviceChoice
from nmt.data.batching import Batch, collate
from nmt.models.registry import VocabSizes, build_model
from nmt.training.logger import MetricsLog
from nmt.training.optim import build_optimizer
from nmt.training.trainer import Trainer

START, END = "<!-- overhead:start -->", "<!-- overhead:end -->"
MULTI30K_VOCAB = (7853, 5893)  # de, en with min_freq 2 (the tutorials' figures)
PAD, BOS, EOS = 1, 2, 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=12, help="timed training steps")
    p.add_argument("--saves", type=int, default=5, help="timed checkpoint saves")
    p.add_argument("--save-every", type=int, default=100, help="trainer.save_every_steps")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--ddp-pairs", type=int, default=6000, help="synthetic training pairs")
    p.add_argument("--ddp-repeats", type=int, default=2)
    p.add_argument("--skip-ddp", action="store_true")
    p.add_argument("--out", type=Path, default=Path("docs/performance.md"))
    p.add_argument("--no-write", action="store_true", help="print only")
    return p.parse_args(argv)


# -- 1. checkpoint saves vs training steps ---------------------------------------------
def synthetic_batches(count: int, batch_size: int, rng: random.Random) -> list[Batch]:
    """Multi30k-like lengths (5 to 25 tokens) and random ids."""
    batches = []
    for _ in range(count):
        pairs = []
        for _ in range(batch_size):
            src = [rng.randrange(4, MULTI30K_VOCAB[0]) for _ in range(rng.randint(5, 25))]
            tgt = [rng.randrange(4, MULTI30K_VOCAB[1]) for _ in range(rng.randint(5, 25))]
            pairs.append((src, tgt))
        batches.append(
            collate(pairs, list(range(batch_size)), pad_idx=PAD, bos_idx=BOS, eos_idx=EOS)
        )
    return batches


def measure_checkpointing(args: argparse.Namespace, out_dir: Path) -> dict[str, object]:
    cfg = compose_train_config(["trainer.device=cpu", "trainer.max_minutes=null"])
    cfg.trainer.device = DeviceChoice.cpu
    torch.manual_seed(0)
    sizes = VocabSizes(src=MULTI30K_VOCAB[0], tgt=MULTI30K_VOCAB[1], src_pad=PAD, tgt_pad=PAD)
    model = build_model(cfg.model, sizes)
    trainer = Trainer(
        model,
        build_optimizer(model, cfg.optimizer),
        None,
        cfg.trainer,
        device=torch.device("cpu"),
        out_dir=out_dir,
        validate=lambda m: {},
        checkpoint_data={"config": {"bench": True}},
    )
    batches = synthetic_batches(args.steps + 2, args.batch_size, random.Random(0))
    for batch in batches[:2]:  # warm-up (and Adam's state exists for the saves)
        trainer.train_step(batch)
    step_times = []
    for batch in batches[2:]:
        start = time.perf_counter()
        float(trainer.train_step(batch))  # the host waits for the step
        step_times.append(time.perf_counter() - start)
    save_times = []
    for _ in range(args.saves):
        start = time.perf_counter()
        trainer.save()
        save_times.append(time.perf_counter() - start)
    step, save = statistics.median(step_times), statistics.median(save_times)
    return {
        "arch": cfg.model.arch,
        "params": sum(p.numel() for p in model.parameters()),
        "file_mb": (out_dir / "checkpoints" / "last.pt").stat().st_size / 2**20,
        "step_s": step,
        "save_s": save,
        "save_in_steps": save / step,
        "overhead_pct": 100 * save / (args.save_every * step + save),
        "teacher_forcing": cfg.trainer.teacher_forcing,
    }


# -- 2. one process vs two (DDP, gloo) ---------------------------------------------------
def write_corpus(root: Path, pairs: int, rng: random.Random) -> list[str]:
    """Reverse-and-map pairs (as the tests' synthetic task) over 200 words."""
    overrides = ["data=files"]
    for split, count in (("train", pairs), ("val", 100)):
        src_lines, tgt_lines = [], []
        for _ in range(count):
            ids = [rng.randrange(200) for _ in range(rng.randint(4, 16))]
            src_lines.append(" ".join(f"s{i}" for i in ids))
            tgt_lines.append(" ".join(f"T{i}" for i in reversed(ids)))
        for side, lines in (("src", src_lines), ("tgt", tgt_lines)):
            path = root / f"{split}.{side}"
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
            overrides.append(f"data.{split}_{side}={path}")
    return overrides


DDP_OVERRIDES = [
    "tokenizer=whitespace",
    "vocab.min_freq=1",
    "model.emb_dim=64",
    "model.hidden_dim=128",
    "model.tie_embeddings=false",
    "model.num_layers=1",
    "trainer.batch_size=64",
    "trainer.max_epochs=1",
    "trainer.max_minutes=null",
    "trainer.device=cpu",
    "trainer.test_split=null",
    "trainer.bleu_every_epoch=false",
    "trainer.log_every_steps=50",
]


def ddp_tokens_per_s(processes: int, data: list[str], run_dir: Path) -> float:
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc_per_node={processes}",
        "-m",
        "nmt",
        "train",
        *data,
        *DDP_OVERRIDES,
        f"hydra.run.dir={run_dir}",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"torchrun failed:\n{proc.stderr[-3000:]}")
    epoch = MetricsLog(run_dir).epoch_records()[-1]
    return float(epoch["tokens_per_s"])


def measure_ddp(args: argparse.Namespace, tmp: Path) -> dict[int, list[float]]:
    data = write_corpus(tmp, args.ddp_pairs, random.Random(1))
    speeds: dict[int, list[float]] = {1: [], 2: []}
    for repeat in range(args.ddp_repeats):
        for processes in (1, 2) if repeat % 2 == 0 else (2, 1):
            run = tmp / f"ddp{processes}_{repeat}"
            speeds[processes].append(ddp_tokens_per_s(processes, data, run))
            print(f"{processes} process(es): {speeds[processes][-1]:.0f} tokens/s", flush=True)
    return speeds


# -- the docs section --------------------------------------------------------------------
def section(
    command: str, ckpt: dict[str, object], ddp: dict[int, list[float]] | None, save_every: int
) -> str:
    date = dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    lines = [
        START,
        "## Overhead of checkpoints and of DDP on CPU (`scripts/bench_overhead.py`)",
        "",
        f"- command: `{command}`",
        f"- machine: {machine()}, shared and noisy; torch {torch.__version__}; date: {date}",
        "",
        f"Checkpoint of the default recipe's model ({ckpt['arch']}, {ckpt['params']:,} "
        f"parameters, Multi30k vocabulary sizes; file {ckpt['file_mb']:.0f} MB) against a "
        f"training step (batch 128 synthetic sentences, fp32, teacher forcing "
        f"{ckpt['teacher_forcing']}), medians:",
        "",
        "| training step (s) | save (s) | a save costs | share of training time, save every "
        f"{save_every} steps |",
        "|---|---|---|---|",
        f"| {ckpt['step_s']:.3f} | {ckpt['save_s']:.3f} | {ckpt['save_in_steps']:.2f} steps | "
        f"{ckpt['overhead_pct']:.2f}% |",
        "",
    ]
    if ddp:
        lines += [
            "DDP on CPU: `torchrun --nproc_per_node=N -m nmt train` (gloo, one thread per "
            "process), tiny model (emb 64, hidden 128, 1 layer, batch 64), 1 epoch of a synthetic "
            "corpus; tokens/s of all processes together, median (and range) of "
            f"{len(ddp[1])} runs each, alternating:",
            "",
            "| processes | tokens/s | range | vs 1 process (medians) |",
            "|---|---|---|---|",
            *(
                f"| {n} | {statistics.median(ddp[n]):.0f} | {min(ddp[n]):.0f}-{max(ddp[n]):.0f} "
                f"| {statistics.median(ddp[n]) / statistics.median(ddp[1]):.2f}x |"
                for n in sorted(ddp)
            ),
            "",
            "The two processes compete for two cores that other jobs also use (load "
            f"average {os.getloadavg()[0]:.1f} at the end), and each step adds a gradient "
            "all-reduce and a stop-flag exchange over gloo: the ratio says little about DDP "
            "where each process has a core or a GPU of its own.",
        ]
    return "\n".join([*lines, END])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = measure_checkpointing(args, Path(tmp) / "ckpt")
        print(json.dumps(ckpt, indent=1), flush=True)
        ddp = None if args.skip_ddp else measure_ddp(args, Path(tmp))
    text = section(command_line("bench_overhead.py", argv), ckpt, ddp, args.save_every)
    print(text)
    if not args.no_write:
        update_file_section(args.out, START, END, text, "# Performance\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
