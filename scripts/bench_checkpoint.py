#!/usr/bin/env python
"""What the integrity check on checkpoint loads costs.

    python scripts/bench_checkpoint.py [--params 19000000] [--repeats 5]
        [--out docs/performance.md]

A checkpoint of ``--params`` float32 weights (19 M: about 76 MB) is written
with ``save_checkpoint``; then, ``--repeats`` times each, the median time of
``verify_archive`` (the CRC-32 check of every zip member that
``load_checkpoint`` runs first) and of the whole ``load_checkpoint`` (check +
``torch.load(weights_only=True)``).  The file is read once beforehand, so
both figures are for a file in the page cache.

The figures go to the section of docs/performance.md between
``<!-- checkpoint-load:start -->`` and ``<!-- checkpoint-load:end -->``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch
from _common import command_line, machine, update_file_section

from nmt.checkpoint import load_checkpoint, save_checkpoint, verify_archive

START, END = "<!-- checkpoint-load:start -->", "<!-- checkpoint-load:end -->"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--params", type=int, default=19_000_000, help="float32 weights")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("docs/performance.md"))
    return p.parse_args(argv)


def median_s(fn: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(params: int, repeats: int) -> dict[str, float]:
    """Size (MB) and median seconds of the check and of a whole load."""
    rows, cols = params // 1000, 1000
    model = {"embedding.weight": torch.randn(rows, cols), "bias": torch.zeros(params - rows * cols)}
    with tempfile.TemporaryDirectory() as tmp:
        path = save_checkpoint({"model": model}, Path(tmp) / "big.pt")
        path.read_bytes()  # into the page cache
        check = median_s(lambda: verify_archive(path), repeats)
        load = median_s(lambda: load_checkpoint(path), repeats)
        return {"mb": path.stat().st_size / 1e6, "check_s": check, "load_s": load}


def report(figures: dict[str, float], params: int, repeats: int) -> str:
    share = figures["check_s"] / figures["load_s"]
    return "\n".join(
        [
            START,
            "## Checkpoint integrity check",
            "",
            f"Command: `{command_line('bench_checkpoint.py')}`  ",
            f"Machine: {machine()}  ",
            f"Date: {dt.date.today().isoformat()}",
            "",
            f"A checkpoint of {params:,} float32 weights ({figures['mb']:.1f} MB), "
            f"median of {repeats} runs, file in the page cache:",
            "",
            "| step | time |",
            "|---|---:|",
            f"| CRC check of every zip member (`verify_archive`) | {figures['check_s']:.3f} s |",
            f"| whole `load_checkpoint` (check + `torch.load`) | {figures['load_s']:.3f} s |",
            "",
            f"The check is {share:.0%} of the load.",
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    figures = measure(args.params, args.repeats)
    text = report(figures, args.params, args.repeats)
    print(text)
    update_file_section(args.out, START, END, text, "# Performance\n")


if __name__ == "__main__":
    main()
