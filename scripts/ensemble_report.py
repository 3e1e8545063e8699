"""An ensemble of trained runs against each of its members, with `nmt evaluate`.

    python scripts/ensemble_report.py A.pt B.pt [--splits val test_2016_flickr]
        [--data-root DIR] [--beam-size 1] [--length-penalty 0.0] [--out docs/results.md]

Each member alone, then ``checkpoint=[A.pt,B.pt]``, is scored on every split
(reports in a temporary folder, so the runs stay untouched).  The table, the
command, the machine, the date and sacreBLEU's signature go into the
``<!-- ensemble:<decoding>:start -->`` ... ``end`` section of ``--out``;
every figure is read from the reports `nmt evaluate` wrote.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    command_line,
    decoding_overrides,
    machine,
    nmt_command,
    update_file_section,
)


def markers(beam_size: int) -> tuple[str, str]:
    """One section per decoding: ``<!-- ensemble:greedy:start -->``, ``...:beam5:...``."""
    tag = "greedy" if beam_size == 1 else f"beam{beam_size}"
    return f"<!-- ensemble:{tag}:start -->", f"<!-- ensemble:{tag}:end -->"


def evaluate(checkpoint: str, split: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """`nmt evaluate` of one checkpoint (or ``[a,b]`` list) on one split; its report."""
    command = [
        *nmt_command(),
        "evaluate",
        f"checkpoint={checkpoint}",
        f"split={split}",
        f"output_dir={folder}",
        "device=cpu",
        *decoding_overrides(args.beam_size, args.length_penalty),
    ]
    if args.data_root:
        command.append(f"data_root={args.data_root}")
    started = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    report = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    return report | {"seconds": time.perf_counter() - started}


def table(rows: list[tuple[str, str, dict[str, Any]]]) -> list[str]:
    lines = [
        "| model | split | BLEU | chrF | ppl | sentences | time |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, split, r in rows:
        lines.append(
            f"| {name} | {split} | {r['bleu']:.2f} | {r['chrf']:.2f} | {r['ppl']:.2f} "
            f"| {r['num_sentences']} | {r['seconds']:.0f} s |"
        )
    return lines


def section(rows: list[tuple[str, str, dict[str, Any]]], members: list[str]) -> str:
    decoding = "greedy" if ARGS.beam_size == 1 else f"beam {ARGS.beam_size}"
    start, end = markers(ARGS.beam_size)
    names = ", ".join(f"{chr(65 + i)} = `{m}`" for i, m in enumerate(members))
    lines = [
        start,
        f"## Ensemble of runs with different seeds ({decoding})",
        "",
        f"Members: {names}.  Decoding: {decoding}; the ensemble averages the",
        "members' log-probabilities at every step (`checkpoint=[A,B]`); its ppl",
        "is that of the renormalised mean log-probabilities.",
        "",
        *table(rows),
        "",
        f"- command: `{command_line('ensemble_report.py')}`",
        f"- machine: {machine('cpu')} (OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})",
        f"- date: {datetime.date.today().isoformat()}",
        f"- BLEU signature: `{rows[0][2]['signature']}`",
        end,
    ]
    return "\n".join(lines)


def main() -> None:
    members = [str(Path(m).resolve()) for m in ARGS.members]
    candidates = [(chr(65 + i), m) for i, m in enumerate(members)]
    candidates.append(("ensemble " + "+".join(n for n, _ in candidates), f"[{','.join(members)}]"))
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n, (name, checkpoint) in enumerate(candidates):
            for split in ARGS.splits:
                folder = Path(tmp) / f"{n}-{split}"
                rows.append((name, split, evaluate(checkpoint, split, ARGS, folder)))
                print(table(rows)[-1], flush=True)
    start, end = markers(ARGS.beam_size)
    update_file_section(ARGS.out, start, end, section(rows, members), "# Results\n")
    print(f"wrote {ARGS.out}", file=sys.stderr)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("members", nargs="+", help="checkpoints (2 or more)")
    parser.add_argument("--splits", nargs="+", default=["val", "test_2016_flickr"])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--beam-size", type=int, default=1)
    parser.add_argument("--length-penalty", type=float, default=0.0)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    return parser.parse_args()


if __name__ == "__main__":
    ARGS = parse_args()
    main()
