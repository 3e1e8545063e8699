"""The two tables ``scripts/bench_train.py`` writes to docs/performance.md,
each in a section of its own.

- Training step (default, ``--batching same``): tokens/s and peak memory of
  nmt's step against the tutorials' loop on the same batches.
- Epoch time (``--batching tutorial``): the tutorials' loop on the tutorials'
  batches (the pairs shuffled every epoch and cut into batches in that order:
  no sorting by length, each batch padded to its longest sentence) against
  ``nmt train``'s step on its own length-bucketed batches.  Timing a whole
  epoch on a small shared CPU takes too long, so each side runs a fixed
  number of steps and its epoch time is the mean step time times its number
  of batches per epoch.
"""

from __future__ import annotations

import argparse
import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from _common import machine, replace_section, section_of

from nmt.config import TrainConfig
from nmt.models.registry import VocabSizes

SECTION_START = "<!-- bench_train:start -->"
SECTION_END = "<!-- bench_train:end -->"
HEADING = "## Training step: nmt vs the tutorials' loop (`scripts/bench_train.py`)"
INTRO = (
    "Target tokens per second of one training step (forward, loss, backward, clip,\n"
    "Adam step) on the same batches, alternating between the two sides in one process.\n"
    "The reference is `scripts/tutorial_reference.py`: the same architecture and sizes\n"
    "(for the `_seed` recipes, the seed tutorials' models: same layers, same count),\n"
    "a Python loop over target steps with per-step attention and vocabulary projection\n"
    "and one teacher-forcing coin per batch and step. Peak memory: growth of the\n"
    "resident set during one step (CPU) or peak allocated (CUDA).\n"
    "\n"
    "nmt computes the same model; it differs in how: the additive attention's keys\n"
    "U_a h_j once per batch; sentences sorted by target length, the finished ones\n"
    "dropped from the step loop and padded positions never projected\n"
    "(`Seq2Seq.forward_packed`); under full teacher forcing the vocabulary projection\n"
    "and loss once over all steps, and the RNN in one call where no step reads the\n"
    "previous step's features (Sutskever, Cho, Luong without input feeding). With\n"
    "teacher forcing < 1 each step still needs its logits for the argmax, so Sutskever\n"
    "and Cho gain little more than the padding there.\n"
)
COLUMNS = [
    "recipe",
    "device",
    "teacher forcing",
    "batch",
    "params",
    "tgt vocab",
    "reference tok/s",
    "nmt tok/s",
    "speedup",
    "reference peak MB",
    "nmt peak MB",
    "machine",
    "torch",
    "date",
    "command",
]

EPOCH_START = "<!-- bench_train_epoch:start -->"
EPOCH_END = "<!-- bench_train_epoch:end -->"
EPOCH_HEADING = "## Epoch time: the tutorials' batching vs `nmt train` (`scripts/bench_train.py`)"
EPOCH_INTRO = (
    "What a user waits for one training epoch of the recipe's model: the tutorials'\n"
    "loop (`scripts/tutorial_reference.py`) on the tutorials' batches (shuffled\n"
    "pairs cut in order: unsorted, each batch padded to its longest sentence)\n"
    "against `nmt train`'s step on its own length-bucketed batches\n"
    "(as `nmt train` builds them, from `nmt.data.batching`). Both sides build the same model (the\n"
    "seed recipes are the tutorials' models). Each side runs a fixed number of\n"
    "timed steps (the command's `--steps`, after `--warmup` untimed ones),\n"
    "alternating with the other side; the epoch time is **extrapolated**: the\n"
    "mean seconds per step times the side's batches per epoch. Training steps\n"
    "only: no validation, no checkpoint. Tokens: real target tokens (no padding).\n"
)
EPOCH_COLUMNS = [
    "recipe",
    "device",
    "teacher forcing",
    "batch",
    "params",
    "train pairs",
    "tutorial batches/epoch",
    "tutorial s/step",
    "tutorial epoch (extrapolated)",
    "nmt batches/epoch",
    "nmt s/step",
    "nmt epoch (extrapolated)",
    "speedup",
    "machine",
    "torch",
    "date",
    "command",
]


def run_label(args: argparse.Namespace) -> str:
    """The table's first column: the recipe and what changes the run's nature."""
    notes = [f"precision={args.precision}"] if args.precision else []
    notes += ["compile"] if args.compile else []
    notes += ["synthetic"] if args.synthetic else []
    return args.recipe + (f" ({', '.join(notes)})" if notes else "")


# ``sides`` below: bench_train.Side pairs (reference, nmt)
def step_row(
    args: argparse.Namespace,
    cfg: TrainConfig,
    sides: tuple[Any, Any],
    sizes: VocabSizes,
    device: torch.device,
    command: str,
) -> list[str]:
    """The same-batches table's row: tokens/s and peak memory of each side."""
    ref, ours = sides
    return [
        run_label(args),
        device.type,
        f"{cfg.trainer.teacher_forcing:g}",
        str(cfg.trainer.batch_size),
        f"{ours.params:,}",
        str(sizes.tgt),
        f"{ref.tokens_per_s:.0f}",
        f"{ours.tokens_per_s:.0f}",
        f"{ours.tokens_per_s / ref.tokens_per_s:.2f}x",
        f"{ref.peak_mb:.0f}",
        f"{ours.peak_mb:.0f}",
        machine(device),
        torch.__version__,
        dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        f"`{command}`",
    ]


def epoch_row(
    args: argparse.Namespace,
    cfg: TrainConfig,
    sides: tuple[Any, Any],
    per_epoch: tuple[int, int],
    pairs: int,
    device: torch.device,
    command: str,
) -> list[str]:
    """The epoch table's row: each side's s/step, batches/epoch and their product."""
    (ref, ours), (ref_batches, nmt_batches) = sides, per_epoch
    ref_epoch = ref.seconds_per_step * ref_batches
    nmt_epoch = ours.seconds_per_step * nmt_batches
    return [
        run_label(args),
        device.type,
        f"{cfg.trainer.teacher_forcing:g}",
        str(cfg.trainer.batch_size),
        f"{ours.params:,}",
        str(pairs),
        str(ref_batches),
        f"{ref.seconds_per_step:.2f}",
        minutes(ref_epoch),
        str(nmt_batches),
        f"{ours.seconds_per_step:.2f}",
        minutes(nmt_epoch),
        f"{ref_epoch / nmt_epoch:.2f}x",
        machine(device),
        torch.__version__,
        dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        f"`{command}`",
    ]


def minutes(seconds: float) -> str:
    return f"{seconds / 60:.1f} min"


@dataclass(frozen=True)
class Table:
    """A table of rows keyed by their first three cells (recipe, device, ratio), in
    the section between ``start`` and ``end`` that bench_train.py owns."""

    start: str
    end: str
    heading: str
    intro: str
    columns: list[str]


STEP_TABLE = Table(SECTION_START, SECTION_END, HEADING, INTRO, COLUMNS)
EPOCH_TABLE = Table(EPOCH_START, EPOCH_END, EPOCH_HEADING, EPOCH_INTRO, EPOCH_COLUMNS)


def update_table_section(path: Path, table: Table, row: list[str]) -> None:
    """Replace (or add) ``row`` in ``table``; the rest of the file is kept."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Performance\n"
    rows: list[list[str]] = []
    for line in (section_of(text, table.start, table.end) or "").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| ") and len(cells) == len(table.columns) and cells[0] != "recipe":
            rows.append(cells)
    rows = sorted([r for r in rows if r[:3] != row[:3]] + [row], key=lambda r: r[:3])
    lines = [
        "| " + " | ".join(table.columns) + " |",
        "|" + "---|" * len(table.columns),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
    section = "\n".join([table.start, table.heading, "", table.intro, *lines, table.end])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(replace_section(text, table.start, table.end, section), encoding="utf-8")
