#!/usr/bin/env python
"""Best checkpoint against the average of a run's last N step checkpoints.

    python scripts/average_report.py --run RUN_DIR [--last 5] [--work /tmp/avg]
        [--splits val test_2016_flickr] [--out docs/results.md]

Runs ``nmt average run=RUN_DIR last=N`` (the output goes under ``--work``,
never into the run dir), then ``nmt evaluate`` of ``best.pt`` and of the
average on each split with the decoding the run's recipe uses, and writes
the figures between ``<!-- averaging:start -->`` and ``<!-- averaging:end -->``
of docs/results.md.  Every figure is read from `nmt evaluate`'s output.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

from _common import command_line, machine, nmt_command, update_file_section
from results import recipe_decoding

START, END = "<!-- averaging:start -->", "<!-- averaging:end -->"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run", type=Path, required=True, help="a finished run dir (read only)")
    p.add_argument("--last", type=int, default=5, help="step checkpoints to average")
    p.add_argument("--work", type=Path, default=Path("/tmp/nmt-average"))
    p.add_argument("--splits", nargs="+", default=["val", "test_2016_flickr"])
    p.add_argument("--out", type=Path, default=Path("docs/results.md"))
    return p.parse_args(argv)


def nmt(*args: str) -> str:
    """Run `nmt ARGS`; its stdout (a failure stops the script with nmt's message)."""
    proc = subprocess.run([*nmt_command(), *args], capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"nmt {' '.join(args)} failed: {proc.stderr.strip()[-500:]}")
    return proc.stdout


def evaluate(checkpoint: Path, split: str, out: Path, decoding: list[str]) -> dict[str, Any]:
    stdout = nmt(
        "evaluate", f"checkpoint={checkpoint}", f"split={split}", f"output_dir={out}", *decoding
    )
    return dict(json.loads(stdout.strip().splitlines()[-1]))


def measure(args: argparse.Namespace) -> dict[str, dict[str, dict[str, Any]]]:
    """checkpoint label -> split -> `nmt evaluate` report."""
    average = args.work / f"average_last{args.last}.pt"
    nmt("average", f"run={args.run}", f"last={args.last}", f"output={average}")
    decoding = recipe_decoding(args.run)
    checkpoints = {
        "best.pt": args.run / "checkpoints" / "best.pt",
        f"average of last {args.last}": average,
    }
    return {
        label: {
            split: evaluate(path, split, args.work / "eval" / path.stem / split, decoding)
            for split in args.splits
        }
        for label, path in checkpoints.items()
    }


def report(args: argparse.Namespace, found: dict[str, dict[str, dict[str, Any]]]) -> str:
    any_report = next(iter(next(iter(found.values())).values()))
    rows = [
        f"| {label} | {split} | {r['bleu']:.2f} | {r['chrf']:.2f} | {r['ppl']:.2f} |"
        for label, splits in found.items()
        for split, r in splits.items()
    ]
    return "\n".join(
        [
            START,
            "## Checkpoint averaging",
            "",
            f"Command: `{command_line('average_report.py')}`  ",
            f"Machine: {machine()}  ",
            f"Date: {dt.date.today().isoformat()}  ",
            f"Run: `{args.run}`; averaged: its newest {args.last} `checkpoints/step_*.pt` "
            f"(`nmt average run=... last={args.last}`)  ",
            f"Decoding: {' '.join(recipe_decoding(args.run)) or 'greedy'}  ",
            f"sacreBLEU: `{any_report['signature']}`",
            "",
            "| checkpoint | split | BLEU | chrF | ppl |",
            "|---|---|---:|---:|---:|",
            *rows,
            END,
        ]
    )


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    text = report(args, measure(args))
    print(text)
    update_file_section(args.out, START, END, text, "# Results\n")


if __name__ == "__main__":
    main()
