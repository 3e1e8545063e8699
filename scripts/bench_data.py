"""The data path at scale: prepare once, then train with flat memory (docs/performance.md).

For each corpus size it builds a synthetic corpus from Multi30k (each line two
random training pairs joined, seeded, so the same size gives the same files),
then, for words (spaCy) and sentencepiece (8k, joint):

- cold prepare: ``nmt prepare`` into an empty store (sentencepiece training
  included), its wall time and peak RSS;
- warm start: ``nmt train`` on that store for ``--steps`` steps, the time from
  launch to the first training step (the first record in metrics.jsonl, with
  ``trainer.log_every_steps=1``), the process's peak RSS and training tokens/s.

It also times batch assembly on Multi30k in one run: batches from the store
(memory-mapped Arrow) against batches from Python lists of ids (the path
before the store), the same batches, as a ratio.

Rows are kept in docs/bench_data.json (one per size and tokenizer, replaced
when measured again), so sizes can be run in separate invocations; the
section of docs/performance.md is rewritten from all rows, with the targets
of issue 19 stated as met or not.

    python scripts/bench_data.py --sizes 100000 1000000 4500000 --work /tmp/bench_data
"""

from __future__ import annotations

import argparse
import datetime
import gzip
import json
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _common import ROOT, command_line, machine, nmt_command, update_file_section

START, END = "<!-- bench_data:start -->", "<!-- bench_data:end -->"
ROWS = ROOT / "docs" / "bench_data.json"
TOKENIZERS = {
    "words": ["tokenizer=spacy"],
    "sentencepiece": ["tokenizer=sentencepiece", "tokenizer.vocab_size=8000"],
}


def make_corpus(pairs: int, folder: Path, multi30k: Path) -> Path:
    """``pairs`` lines, each two seeded random Multi30k training pairs joined
    by a space, as train.de/train.en; val.de/val.en are Multi30k's."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "done").is_file():
        return folder
    sides = {}
    for lang in ("de", "en"):
        with gzip.open(multi30k / f"train.{lang}.gz", "rt", encoding="utf-8") as handle:
            sides[lang] = handle.read().splitlines()
        with gzip.open(multi30k / f"val.{lang}.gz", "rt", encoding="utf-8") as handle:
            (folder / f"val.{lang}").write_text(handle.read(), encoding="utf-8")
    count = len(sides["de"])
    rng = random.Random(pairs)
    with (
        open(folder / "train.de", "w", encoding="utf-8") as de,
        open(folder / "train.en", "w", encoding="utf-8") as en,
    ):
        for _ in range(pairs):
            i, j = rng.randrange(count), rng.randrange(count)
            de.write(f"{sides['de'][i]} {sides['de'][j]}\n")
            en.write(f"{sides['en'][i]} {sides['en'][j]}\n")
    (folder / "done").write_text("")
    return folder


def data_overrides(corpus: Path, store: Path, tokenizer: str) -> list[str]:
    return [
        "data=files",
        "data.src_lang=de",
        "data.tgt_lang=en",
        f"data.train_src={corpus / 'train.de'}",
        f"data.train_tgt={corpus / 'train.en'}",
        f"data.val_src={corpus / 'val.de'}",
        f"data.val_tgt={corpus / 'val.en'}",
        f"data.store_dir={store / 'prepared'}",
        f"data.subword_dir={store / 'sentencepiece'}",
        *TOKENIZERS[tokenizer],
    ]


def run_measured(command: list[str], cwd: Path, log: Path, first_step: Path | None = None) -> dict:
    """Run ``command``; its wall time, peak RSS (its own, from wait4) and, when
    ``first_step`` is a metrics.jsonl path, the time until its first line."""
    started = time.perf_counter()
    first, anon = None, 0.0
    with open(log, "w") as out:
        proc = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        while True:
            pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
            if pid:
                break
            anon = max(anon, _rss_anon_mb(proc.pid))
            started_logging = first_step is not None and first_step.is_file()
            if first is None and started_logging and first_step.stat().st_size > 0:
                first = time.perf_counter() - started
            time.sleep(0.05)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{' '.join(command)} failed ({code}); see {log}")
    return {
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "first_step_s": first,
    }


def _rss_anon_mb(pid: int) -> float:
    """A process's private (anonymous) resident memory now: RSS less the pages
    of mapped files (the store's Arrow files among them), which the page cache
    shares between processes and can drop."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        pass
    return 0.0


def tokens_per_s(metrics: Path) -> float:
    records = [json.loads(line) for line in metrics.read_text().splitlines()]
    speeds = [r["tokens_per_s"] for r in records if r.get("type") == "train"][10:]
    return round(statistics.median(speeds), 1) if speeds else float("nan")


def measure(pairs: int, tokenizer: str, args: argparse.Namespace) -> dict[str, Any]:
    corpus = make_corpus(pairs, args.work / f"corpus_{pairs}", args.multi30k)
    store = args.work / f"store_{pairs}_{tokenizer}"
    subprocess.run(["rm", "-rf", str(store)], check=True)
    store.mkdir(parents=True)
    overrides = data_overrides(corpus, store, tokenizer) + [f"threads={args.threads}"]
    cold = run_measured([*nmt_command(), "prepare", *overrides], store, store / "prepare.log")
    run_dir = store / "run"
    train = [
        *nmt_command(), "train", *overrides, f"trainer.max_steps={args.steps}",
        "trainer.log_every_steps=1", "trainer.bleu_every_epoch=false", "trainer.test_split=null",
        "trainer.max_minutes=null", f"hydra.run.dir={run_dir}",
    ]  # fmt: skip
    warm = run_measured(train, store, store / "train.log", run_dir / "metrics.jsonl")
    return {
        "pairs": pairs,
        "tokenizer": tokenizer,
        "cold_prepare_s": cold["wall_s"],
        "prepare_peak_rss_mb": cold["peak_rss_mb"],
        "warm_first_step_s": round(warm["first_step_s"], 1),
        "train_peak_rss_mb": warm["peak_rss_mb"],
        "train_peak_anon_mb": warm["peak_anon_mb"],
        "tokens_per_s": tokens_per_s(run_dir / "metrics.jsonl"),
        "steps": args.steps,
    }


def assembly_ratio(args: argparse.Namespace) -> dict[str, Any]:
    """µs per batch from the store and from lists of ids, the same Multi30k batches."""
    import numpy as np
    from _common import compose_train_config

    from nmt.data.batching import training_batches
    from nmt.data.store import StoredPairs, prepare

    os.environ.setdefault("NMT_DATA_DIR", str(args.multi30k))
    cfg = compose_train_config([f"data.store_dir={args.work / 'm30k'}"])
    prepared = prepare(cfg)
    stored = StoredPairs(prepared.splits["train"], prepared.pipeline)
    listed = [(list(s), list(t)) for s, t in stored.take(np.arange(len(stored)))]
    result = {}
    for name, pairs in (("store", stored), ("lists", listed)):
        batches = training_batches(pairs, cfg.trainer, prepared.pipeline.tgt_vocab)
        started = time.perf_counter()
        count = sum(1 for _ in batches.batches(1))
        result[name] = round((time.perf_counter() - started) / count * 1e6)
    result["batches"] = count
    return result


def targets(rows: list[dict[str, Any]]) -> list[str]:
    """Issue 19's targets, each measured, met or not (where the rows allow)."""
    lines = []
    by = {(r["tokenizer"], r["pairs"]): r for r in rows}
    for tok in TOKENIZERS:
        sizes = sorted(p for t, p in by if t == tok)
        if len(sizes) > 1:
            low, high = by[(tok, sizes[0])], by[(tok, sizes[-1])]
            growth = high["train_peak_rss_mb"] / low["train_peak_rss_mb"] - 1
            lines.append(
                f"- {tok}: peak RSS of `nmt train` from {sizes[0]:,} to {sizes[-1]:,} pairs grows "
                f"{100 * growth:+.1f}% (target within 10%): "
                f"{'met' if growth <= 0.10 else 'not met'}"
            )
        if (tok, 1_000_000) in by:
            row = by[(tok, 1_000_000)]
            limit = 60 if tok == "words" else 90
            lines.append(
                f"- {tok}, 1M pairs: peak RSS {row['train_peak_rss_mb']} MB (target <= 1,536 MB): "
                f"{'met' if row['train_peak_rss_mb'] <= 1536 else 'not met'}; cold prepare "
                f"{row['cold_prepare_s']} s (target <= {limit} s): "
                f"{'met' if row['cold_prepare_s'] <= limit else 'not met'}"
            )
        if (tok, 4_500_000) in by:
            lines.append(
                f"- {tok}, 4,500,000 pairs train on this machine ({by[(tok, 4_500_000)]['steps']} "
                f"steps, peak RSS {by[(tok, 4_500_000)]['train_peak_rss_mb']:,} MB): met"
            )
        for size in (1_000_000, 4_500_000):
            if (tok, size) in by:
                first = by[(tok, size)]["warm_first_step_s"]
                lines.append(
                    f"- {tok}, {size:,} pairs: warm start to the first step {first} s "
                    f"(target <= 15 s): {'met' if first <= 15 else 'not met'}"
                )
    return lines


def write_section(rows: list[dict[str, Any]], assembly: dict[str, Any] | None) -> None:
    header = (
        "| tokenizer | pairs | cold prepare (s) | prepare peak RSS (MB) | warm start to step 1 (s)"
        " | train peak RSS (MB) | of it private (MB) | tokens/s | measured |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---|\n"
    )
    table = "".join(
        f"| {r['tokenizer']} | {r['pairs']:,} | {r['cold_prepare_s']}"
        f" | {r['prepare_peak_rss_mb']:,} | {r['warm_first_step_s']}"
        f" | {r['train_peak_rss_mb']:,} | {r.get('train_peak_anon_mb', '-')}"
        f" | {r['tokens_per_s']:,} |"
        f" {r['date']}, {r['machine']} |\n"
        for r in sorted(rows, key=lambda r: (r["tokenizer"], r["pairs"]))
    )
    parts = [
        START,
        "## Corpora of millions of pairs: the prepared store (`scripts/bench_data.py`)",
        "",
        "Synthetic corpora built from Multi30k (each line two random training pairs "
        "joined, seeded); the default recipe (Luong, bf16 where native); `nmt prepare` "
        "into an empty store, then `nmt train` on the warm store for "
        f"{rows[0]['steps'] if rows else '?'} steps. Peak RSS is the process's own "
        "(wait4); it counts the pages of the memory-mapped store the run has read, which "
        "the page cache holds once for all processes and can drop; 'private' is the peak "
        "of RssAnon (sampled every 50 ms; '-' for rows measured before it was recorded). "
        "A warm start ends at the first record of metrics.jsonl. Rows keep the date and "
        "machine of their run (docs/bench_data.json).",
        "",
        f"Command: `{command_line('bench_data.py')}`",
        "",
        header + table.rstrip("\n"),
        "",
        "Targets (issue 19):",
        *targets(rows),
    ]
    if assembly:
        parts += [
            "",
            f"Batch assembly on Multi30k ({assembly['batches']} batches of the default recipe, "
            f"{assembly['date']}, {assembly['machine']}): {assembly['store']} µs a batch from the "
            f"store against {assembly['lists']} µs from Python lists of ids "
            f"(ratio {assembly['store'] / assembly['lists']:.2f}).",
        ]
    parts.append(END)
    update_file_section(
        ROOT / "docs" / "performance.md", START, END, "\n".join(parts), "# Performance\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 4_500_000])
    parser.add_argument("--tokenizers", nargs="+", default=list(TOKENIZERS), choices=TOKENIZERS)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=Path("/tmp/bench_data"))
    parser.add_argument("--multi30k", type=Path, default=Path(os.environ.get("NMT_DATA_DIR", "")))
    parser.add_argument("--no-assembly", action="store_true", help="skip the Multi30k batch timing")
    args = parser.parse_args()
    if not (args.multi30k / "train.de.gz").is_file():
        raise SystemExit("set NMT_DATA_DIR (or --multi30k) to the Multi30k files")
    saved = json.loads(ROWS.read_text()) if ROWS.is_file() else {"rows": [], "assembly": None}
    stamp = {"date": datetime.date.today().isoformat(), "machine": machine(threads=args.threads)}
    for pairs in args.sizes:
        for tokenizer in args.tokenizers:
            row = measure(pairs, tokenizer, args) | stamp
            print(json.dumps(row), flush=True)
            saved["rows"] = [
                r for r in saved["rows"] if (r["pairs"], r["tokenizer"]) != (pairs, tokenizer)
            ] + [row]
            ROWS.write_text(json.dumps(saved, indent=1) + "\n")
    if not args.no_assembly:
        saved["assembly"] = assembly_ratio(args) | stamp
        print(json.dumps(saved["assembly"]), flush=True)
    ROWS.write_text(json.dumps(saved, indent=1) + "\n")
    write_section(saved["rows"], saved["assembly"])


if __name__ == "__main__":
    sys.exit(main())
