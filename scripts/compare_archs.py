#!/usr/bin/env python
"""The Transformer beside the best RNN at equal training time: a section of
docs/results.md (between ``<!-- archs:start -->`` and ``<!-- archs:end -->``,
which scripts/results.py keeps when it rewrites the table).

    python scripts/results.py --only transformer_best.de-en.20m luong_best.de-en.20m ...
    python scripts/compare_archs.py            # the pairs of runs results.py trained

Quality and size come from docs/results.json (the rows results.py wrote for
each run: test BLEU, papers' BLEU, parameters, epochs, budget).  Training
speed comes from each run's epoch records: target tokens per second of
training (pieces for a sentencepiece model, words for a word model, so
compare them within one tokenizer) and epochs per hour, which both models
count in the same sentence pairs.  Decoding speed is measured here, in one
process, on the same sentences and threads for every model: batched greedy
and batched beam 5 (length penalty 0), sentences per second, each the best of
``--repeats`` timings taken in turns, so that a slow moment of a shared
machine hits every model alike.  Ratios are against the RNN of the same
direction, measured in this run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import ROOT, command_line, machine, replace_section  # noqa: E402
from bench_translate import preset  # noqa: E402

from nmt.commands.common import LoadedModel, load_model  # noqa: E402
from nmt.config import DecodingConfig  # noqa: E402
from nmt.data.corpus import load_split  # noqa: E402
from nmt.training.logger import MetricsLog  # noqa: E402
from nmt.translation import translate_ids  # noqa: E402

START, END = "<!-- archs:start -->", "<!-- archs:end -->"
# (Transformer run, RNN run): the runs of scripts/results.py's plan
PAIRS = [
    ("transformer_best.de-en.20m", "luong_best.de-en.20m"),
    ("transformer_best.de-en.60m", "luong_best.de-en.60m"),
    ("transformer_best_en_de.en-de.20m", "luong_best_en_de.en-de.20m"),
    ("transformer_best_en_de.en-de.60m", "luong_best_en_de.en-de.60m"),
]


@dataclass
class Speed:
    greedy: float  # sentences per second
    beam: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs-dir", type=Path, default=ROOT / "outputs" / "results")
    p.add_argument("--results", type=Path, default=ROOT / "docs" / "results.json")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "results.md")
    p.add_argument("--split", default="test_2016_flickr")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads for decoding")
    p.add_argument("--repeats", type=int, default=2, help="timings per model (the best is kept)")
    p.add_argument("--limit", type=int, help="decode the first N sentences only")
    return p.parse_args(argv)


def training_speed(run_dir: Path) -> tuple[float, float]:
    """(target tokens per second, epochs per hour) over the run's epoch records
    (a last epoch cut short by the budget counts by its share of the steps)."""
    epochs = MetricsLog(run_dir).epoch_records()
    seconds = sum(r["epoch_time_s"] for r in epochs)
    tokens = sum(r["tokens_per_s"] * r["epoch_time_s"] for r in epochs)
    summary = json.loads((run_dir / "summary.json").read_text())
    first = epochs[0]["step"] if epochs else 0
    done = summary["steps"] / first if first else len(epochs)
    return tokens / seconds, done / seconds * 3600


def seconds_to_decode(
    loaded: LoadedModel, sources: list[list[int]], decoding: DecodingConfig
) -> float:
    start = time.perf_counter()
    translate_ids(loaded.model, sources, loaded.pipeline, decoding, torch.device("cpu"))
    return time.perf_counter() - start


def decoding_speeds(
    models: dict[str, LoadedModel], split: str, repeats: int, limit: int | None
) -> dict[str, Speed]:
    """Sentences per second of batched greedy and beam 5 for each model, timed
    in turns; the best of ``repeats``."""
    greedy, beam = preset("greedy"), preset("beam", beam_size=5, length_penalty=0.0)
    sources = {}
    for name, loaded in models.items():
        text = list(load_split(loaded.train_config.data, split).src[:limit])
        sources[name] = loaded.pipeline.encode_sources(text)[0]
        seconds_to_decode(loaded, sources[name][:16], beam)  # warm-up
    best: dict[str, list[float]] = {name: [float("inf")] * 2 for name in models}
    for _ in range(repeats):
        for name, loaded in models.items():
            for i, decoding in enumerate((greedy, beam)):
                seconds = seconds_to_decode(loaded, sources[name], decoding)
                best[name][i] = min(best[name][i], seconds)
    return {n: Speed(len(sources[n]) / t[0], len(sources[n]) / t[1]) for n, t in best.items()}


def table_rows(
    pair: tuple[str, str], rows: dict[str, dict], speeds: dict[str, Speed], runs_dir: Path
) -> list[str]:
    """The two lines of one pair: Transformer, then the RNN it is held against."""
    rnn = speeds[pair[1]]
    lines = []
    for name in pair:
        row, speed = rows[name], speeds[name]
        tokens_s, epochs_h = training_speed(runs_dir / name)
        best = f"{row['epochs']} ({row['best_epoch']})"
        lines.append(
            f"| {row['direction']} | {row['budget_min']:g} min | `{row['recipe']}` | "
            f"{row['bleu']:.2f} | {row['bleu_moses_lc']:.2f} | {row['params'] / 1e6:.1f}M | "
            f"{best} | {tokens_s:,.0f} | {epochs_h:.1f} | "
            f"{speed.greedy:.1f} ({speed.greedy / rnn.greedy:.2f}x) | "
            f"{speed.beam:.1f} ({speed.beam / rnn.beam:.2f}x) |"
        )
    return lines


def target_lines(
    pairs: list[tuple[str, str]], rows: dict[str, dict], speeds: dict[str, Speed]
) -> list[str]:
    """The Transformer issue's targets, each met or not, from the pairs here."""
    lines = []
    for transformer, rnn in pairs:
        row = rows[transformer]
        where = f"{row['direction']}, {row['budget_min']:g} min"
        if row["direction"] == "de-en" and row["budget_min"] == 20:
            lines.append(
                verdict(f"{where}: sacreBLEU >= 38.07 (the RNN default's)", row["bleu"], 38.07)
            )
        if row["direction"] == "en-de":
            lines.append(verdict(f"{where}: papers' BLEU >= 37", row["bleu_moses_lc"], 37.0))
        ratio = speeds[transformer].beam / speeds[rnn].beam
        lines.append(verdict(f"{where}: beam 5 at least half the RNN's speed", ratio, 0.5, "x"))
    return lines


def verdict(goal: str, value: float, target: float, unit: str = "") -> str:
    met = "met" if value >= target else f"not met, {target - value:.2f}{unit} short"
    return f"- {goal}: measured {value:.2f}{unit}: **{met}**."


def section(
    pairs: list[tuple[str, str]],
    rows: dict[str, dict],
    speeds: dict[str, Speed],
    args: argparse.Namespace,
) -> str:
    machines = sorted({rows[n]["machine"] for pair in pairs for n in pair})
    lines = [
        START,
        "## The Transformer and the best RNN at equal time",
        "",
        f"Written by `{command_line('compare_archs.py')}` on {dt.date.today()}.  Each pair",
        "trained side by side on the same machine, one torch thread each, for the",
        "budget shown (a 60-minute run goes on from its 20-minute one: see the",
        "commands in the table above); where one run stopped early (the table's",
        "`stopped`), the other trained on beside whatever else the machine ran.",
        f"BLEU is sacreBLEU on {args.split}; papers' BLEU is lower-cased",
        "and Moses-tokenized (labelled, not sacreBLEU).  `epochs (best)`: epochs",
        "trained and the epoch of the checkpoint evaluated.  Training tokens/s count",
        "target tokens (sentencepiece pieces for the Transformer, the RNN's own",
        "units), so epochs per hour is the fair speed.  Decoding: batched, "
        f"{args.threads} torch thread(s),",
        f"sentences per second on the split's sources, the best of {args.repeats} timings taken in",
        "turns; the ratio is against the RNN of the same pair, measured in the same run.",
        f"Training: {'; '.join(machines)}.  Decoding: {machine('cpu', args.threads)}.",
        "",
        "| dir | budget | recipe | BLEU | papers' BLEU | params | epochs (best) "
        "| train tokens/s | epochs/hour | greedy sents/s | beam 5 sents/s |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for pair in pairs:
        lines += table_rows(pair, rows, speeds, args.runs_dir)
    lines += ["", "Targets:", "", *target_lines(pairs, rows, speeds)]
    return "\n".join([*lines, END])


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    found = json.loads(args.results.read_text())
    rows = {r["run"]: r for r in found if r.get("run") and r["split"] == args.split}
    pairs = [p for p in PAIRS if all(n in rows for n in p)]
    missing = [n for p in PAIRS if p not in pairs for n in p if n not in rows]
    if missing:
        print(f"not in {args.results} yet (run scripts/results.py): {', '.join(missing)}")
    if not pairs:
        raise SystemExit("no pair of runs to compare")
    names = [n for p in pairs for n in p]
    models = {
        n: load_model(args.runs_dir / n / "checkpoints" / "best.pt", torch.device("cpu"))
        for n in names
    }
    speeds = decoding_speeds(models, args.split, args.repeats, args.limit)
    text = args.out.read_text(encoding="utf-8")
    block = section(pairs, rows, speeds, args)
    args.out.write_text(replace_section(text, START, END, block), encoding="utf-8")
    print(block)


if __name__ == "__main__":
    main()
