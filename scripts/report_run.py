#!/usr/bin/env python
"""Write the measured figures of finished `nmt train` runs into docs/runs.md.

    python scripts/report_run.py outputs/RUN_DIR [RUN_DIR ...] [--out docs/runs.md]

Every figure comes from the run's own files (summary.json, metrics.jsonl,
test/<split>/report.json, .hydra/overrides.yaml); nothing is typed in.  A run
already in the file is replaced, so the script can be re-run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
from pathlib import Path

import torch
import yaml
from _common import machine, public_paths

from nmt.training.logger import MetricsLog

MARK = "<!-- run: {} -->"


def command_of(run: Path) -> str:
    overrides_file = run / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(overrides_file.read_text()) if overrides_file.is_file() else []
    return " ".join(["nmt train", *overrides])


def section(run: Path) -> str:
    summary = json.loads((run / "summary.json").read_text())
    finished = dt.datetime.fromtimestamp((run / "summary.json").stat().st_mtime)
    lines = [
        MARK.format(run.resolve().name),
        f"### {run.name}",
        "",
        f"- command: `{command_of(run)}`",
        f"- date: {finished:%Y-%m-%d %H:%M}; machine: {machine(summary['device'])}, "
        f"torch {torch.__version__}; device: {summary['device']}",
        f"- model: {summary['arch']}, {summary['params']:,} parameters; "
        f"{summary['epochs']} epochs, {summary['steps']} steps, "
        f"training time {summary['train_time_s']:.0f} s; best epoch {summary['best_epoch']}",
        "",
        "| epoch | train ppl | val ppl | val BLEU | tokens/s | time (s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in MetricsLog(run).epoch_records():
        lines.append(
            f"| {r['epoch']} | {r['train_ppl']:.2f} | {r['val_ppl']:.2f} | "
            f"{r.get('val_bleu', float('nan')):.2f} | {r['tokens_per_s']:.0f} | "
            f"{r['epoch_time_s']:.0f} |"
        )
    for split, rep in summary.get("test", {}).items():
        lines += [
            "",
            f"Test `{split}` (best.pt, greedy): sacreBLEU **{rep['bleu']:.2f}**, "
            f"lower-cased sacreBLEU {rep['bleu_lc']:.2f}, chrF {rep['chrf']:.2f}, "
            f"perplexity {rep['ppl']:.2f}; tutorials' tokenized lower-cased BLEU "
            f"{rep['bleu_tok_lc']:.2f} (not comparable with sacreBLEU).",
            f"BLEU signature: `{rep['signature']}`",
        ]
    return "\n".join(lines) + "\n"


def update(out: Path, runs: list[Path]) -> None:
    text = (
        out.read_text()
        if out.is_file()
        else ("# Training runs\n\nWritten by `scripts/report_run.py` from the runs' own files.\n\n")
    )
    for run in runs:
        block = section(run)
        mark = re.escape(MARK.format(run.resolve().name))
        pattern = re.compile(mark + r".*?(?=<!-- run: |\Z)", re.S)
        text = (
            pattern.sub(lambda _m, b=block: b + "\n", text)
            if pattern.search(text)
            else (text + "\n" + block)
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(public_paths(text))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, default=Path("docs/runs.md"))
    args = parser.parse_args()
    update(args.out, args.runs)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
