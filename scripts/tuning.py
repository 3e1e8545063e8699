#!/usr/bin/env python
"""Tables of the searches behind the `<family>_best` recipes, in docs/tuning.md.
Everything is measured on the validation split, never on a test split.

    # decoding: greedy and beam widths x length penalties on one checkpoint
    python scripts/tuning.py decoding --checkpoint outputs/.../best.pt --name cpu_fast
    # training: a Hydra sweep's jobs (e.g. `nmt train experiment=luong_sweep`,
    # or `nmt train -m experiment=luong_best +tune=word,spm8k ...`, see configs/tune)
    python scripts/tuning.py sweep outputs/sweeps/luong_sweep
    # word vs sentencepiece: finished `nmt train` run dirs, either direction
    python scripts/tuning.py --tokenizer-compare outputs/RUN1 outputs/RUN2 ...
    # subword sampling: pieces per sentence under alpha[:nbest_size] vs test time
    python scripts/tuning.py sampling data.src_lang=en data.tgt_lang=de

Each command writes (or replaces) its own section of docs/tuning.md; finished
evaluations are reused, so a second call only rewrites the table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
from pathlib import Path
from typing import Any

import yaml
from _common import (
    ROOT,
    command_line,
    compose_train_config,
    decoding_overrides,
    machine,
    nmt_command,
    update_file_section,
)

from nmt.training.logger import MetricsLog

DOC = ROOT / "docs" / "tuning.md"
HEADER = (
    "# Tuning on the validation set\n\n"
    "Written by `scripts/tuning.py`.  Every figure is measured on Multi30k's val split;\n"
    "the `<family>_best` recipes take the settings chosen here.  BLEU is sacreBLEU\n"
    "(detokenized, case-sensitive); perplexity is the teacher-forced one.\n"
)


def write_section(key: str, body: str) -> None:
    """Replace the text between this key's markers in DOC (or append a new section)."""
    start, end = f"<!-- tuning:{key} -->", f"<!-- /tuning:{key} -->"
    update_file_section(DOC, start, end, f"{start}\n{body.rstrip()}\n{end}", HEADER)
    print(f"wrote section {key} of {DOC}")


def run_decoding(args: argparse.Namespace) -> None:
    base = ROOT / "outputs" / "tuning" / args.name / "decoding"
    rows = []
    for spec in args.grid:
        beam_text, _, alpha_text = spec.partition(":")
        beam, alpha = int(beam_text), float(alpha_text or 0.0)
        out = base / f"beam{beam}_lp{alpha}"
        report = out / "report.json"
        cmd = [
            *nmt_command(),
            "evaluate",
            f"checkpoint={args.checkpoint}",
            f"split={args.split}",
            f"output_dir={out}",
            *decoding_overrides(beam, alpha),
        ]
        if not report.is_file():
            print("+", " ".join(cmd), flush=True)
            if subprocess.run(cmd, cwd=ROOT, capture_output=True).returncode != 0:
                print(f"  beam {beam} lp {alpha}: evaluation failed; left out")
                continue
        found = json.loads(report.read_text())
        shown = " ".join(cmd[len(nmt_command()) :]).replace(f"{ROOT}/", "")
        rows.append((beam, alpha, found, f"nmt {shown}"))
    best = max(rows, key=lambda r: r[2]["bleu"])
    lines = [
        f"## Decoding: {args.name} ({args.split})",
        "",
        f"Checkpoint `{args.checkpoint}`; {machine()}; {dt.date.today()}.",
        "",
        "| beam | length penalty | BLEU | chrF |",
        "|---|---|---|---|",
    ]
    for beam, alpha, found, _ in rows:
        mark = " **best**" if (beam, alpha) == best[:2] else ""
        lines.append(
            f"| {'greedy' if beam == 1 else beam} | {alpha if beam > 1 else '-'} | "
            f"{found['bleu']:.2f}{mark} | {found['chrf']:.2f} |"
        )
    lines += ["", f"Signature: `{best[2]['signature']}`", "", "Commands:", ""]
    lines += [f"- `{cmd}`" for *_, cmd in rows]
    write_section(f"decoding-{args.name}", "\n".join(lines))


def best_val(epochs: list[dict[str, Any]]) -> dict[str, float]:
    """The best validation BLEU and perplexity over a run's epoch records."""
    return {
        "val_bleu": max((r.get("val_bleu", float("nan")) for r in epochs), default=float("nan")),
        "val_ppl": min((r.get("val_ppl", float("inf")) for r in epochs), default=float("inf")),
    }


def job_row(job: Path) -> dict[str, Any] | None:
    summary_path = job / "summary.json"
    if not summary_path.is_file():
        return None
    summary = json.loads(summary_path.read_text())
    epochs = MetricsLog(job).epoch_records()
    overrides = yaml.safe_load((job / ".hydra" / "overrides.yaml").read_text()) or []
    return {
        "overrides": [o for o in overrides if not o.startswith("experiment=")],
        "epochs": summary["epochs"],
        "params": summary.get("params"),
        "machine": machine(summary.get("device", "cpu"), summary.get("cpu_threads")),
        "train_time_s": summary["train_time_s"],
        **best_val(epochs),
    }


def run_sweep(args: argparse.Namespace) -> None:
    sweep = args.sweep_dir.resolve()
    config = yaml.safe_load((sweep / "multirun.yaml").read_text())
    task = config["hydra"]["overrides"]["task"]
    jobs = sorted((p for p in sweep.iterdir() if p.is_dir()), key=lambda p: int(p.name))
    rows = [(job.name, row) for job in jobs if (row := job_row(job)) is not None]
    if not rows:
        raise SystemExit(f"{sweep}: no finished jobs (summary.json) found")
    shared = set.intersection(*(set(row["overrides"]) for _, row in rows))
    best = max(rows, key=lambda r: r[1]["val_bleu"])
    where = sweep.relative_to(ROOT) if sweep.is_relative_to(ROOT) else sweep
    launcher = config["hydra"].get("launcher") or {}
    at_once = f", {launcher['n_jobs']} jobs at a time" if launcher.get("n_jobs") else ""
    lines = [
        f"## Sweep: {sweep.name}",
        "",
        f"`nmt train -m {' '.join(task)}` (jobs in `{where}`); {rows[0][1]['machine']}"
        f"{at_once}; {dt.date.today()}.  Each job had the same time budget, so the comparison",
        "is at equal training time, not at convergence.  Perplexities of word and",
        "subword jobs count different units: compare BLEU across tokenizers.",
        *([args.note] if args.note else []),
        "",
        "| job | overrides | params | epochs | train time | best val BLEU | best val ppl |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, row in rows:
        mark = " **best**" if name == best[0] else ""
        params = f"{row['params'] / 1e6:.1f}M" if row["params"] else "-"
        varied = " ".join(o for o in row["overrides"] if o not in shared)
        lines.append(
            f"| {name} | `{varied}` | {params} | {row['epochs']} | "
            f"{row['train_time_s'] / 60:.1f} min | {row['val_bleu']:.2f}{mark} | "
            f"{row['val_ppl']:.2f} |"
        )
    write_section(f"sweep-{sweep.name}", "\n".join(lines))


def tokenizer_label(config: dict[str, Any]) -> str:
    """The tokenizer of a run's config.yaml, with its subword settings."""
    tok = config.get("tokenizer", {})
    kind = str(tok.get("kind", "spacy"))
    if kind != "sentencepiece":
        return f"{kind} words" if kind in ("spacy", "whitespace") else kind
    label = f"sentencepiece {tok.get('model_type', 'unigram')} {tok.get('vocab_size', 8000)}"
    label += " joint" if tok.get("joint", True) else " per language"
    if tok.get("sample_alpha", 0.0):
        label += f", sampling alpha {tok['sample_alpha']}"
    if tok.get("bpe_dropout", 0.0):
        label += f", BPE-dropout {tok['bpe_dropout']}"
    return label


def tokenizer_row(run: Path) -> dict[str, Any]:
    """One finished run's figures: best val BLEU and ppl over its epochs."""
    summary_path = run / "summary.json"
    if not summary_path.is_file():
        raise SystemExit(f"{run}: no summary.json (the run has not finished)")
    summary = json.loads(summary_path.read_text())
    config = yaml.safe_load((run / ".hydra" / "config.yaml").read_text()) or {}
    overrides = yaml.safe_load((run / ".hydra" / "overrides.yaml").read_text()) or []
    epochs = MetricsLog(run).epoch_records()
    data = config.get("data", {})
    return {
        "direction": f"{data.get('src_lang', '?')}->{data.get('tgt_lang', '?')}",
        "tokenizer": tokenizer_label(config),
        "epochs": summary["epochs"],
        "params": summary.get("params"),
        **best_val(epochs),
        "minutes": summary["train_time_s"] / 60,
        "command": " ".join(["nmt train", *overrides]),
        "device": summary.get("device", "cpu"),
        "threads": summary.get("cpu_threads"),
    }


def run_tokenizer_compare(runs: list[Path]) -> None:
    rows = sorted(
        (tokenizer_row(run) for run in runs), key=lambda r: (r["direction"], r["tokenizer"])
    )
    first = rows[0]
    where = f"device {first['device']}, {machine(first['device'], first['threads'])}"
    lines = [
        "## Word vs sentencepiece: default recipe (val)",
        "",
        f"`{command_line('tuning.py')}`; runs trained on {where}; "
        f"{dt.date.today()}.  BLEU and perplexity are the best over the run's epochs; the",
        "perplexities of word and piece models are per token of different units, so",
        "compare BLEU across tokenizers and perplexity only within one.",
        "",
        "| direction | tokenizer | epochs | params | val BLEU | val ppl | train min | command |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        params = f"{row['params'] / 1e6:.1f}M" if row["params"] else "-"
        lines.append(
            f"| {row['direction']} | {row['tokenizer']} | {row['epochs']} | {params} | "
            f"{row['val_bleu']:.2f} | {row['val_ppl']:.2f} | {row['minutes']:.1f} | "
            f"`{row['command']}` |"
        )
    write_section("tokenizer-compare", "\n".join(lines))


def run_sampling(args: argparse.Namespace) -> None:
    """How far subword sampling moves training segmentations from test-time
    ones: target pieces per sentence under each (alpha, nbest_size) over the
    Viterbi count, on the first pairs of the prepared training split."""
    from nmt.data.store import StoredPairs, prepare

    # a sampling run's store: it keeps the training text to sample from
    base = ["tokenizer=sentencepiece", "tokenizer.sample_alpha=0.5", *args.overrides]
    prepared = prepare(compose_train_config(base))
    rows = []
    for spec in args.grid:
        alpha_text, _, nbest_text = spec.partition(":")
        alpha, nbest = float(alpha_text), int(nbest_text or -1)
        pairs = StoredPairs(prepared.splits["train"], prepared.pipeline, (alpha, nbest))
        rows.append((alpha, nbest, pairs.sampling_stretch(args.pairs)))
    lines = [
        "## Subword sampling: how much longer the training pieces get",
        "",
        f"`{command_line('tuning.py')}`; `nmt train {' '.join(base)}`'s store, the first "
        f"{args.pairs} training pairs; {machine()}; {dt.date.today()}.",
        "Target pieces per sentence when each segmentation is sampled (Kudo 2018: alpha,",
        "from the nbest_size best, -1 for all), over the count of the best (Viterbi)",
        "segmentation that evaluation and translation use.  `nmt train` logs the same",
        "ratio for its own setting, and warns past 1.3.",
        "",
        "| alpha | nbest_size | pieces vs test time |",
        "|---|---|---|",
    ]
    lines += [f"| {a:g} | {'all' if n == -1 else n} | {r:.2f}x |" for a, n, r in rows]
    write_section("sampling-stretch", "\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tokenizer-compare",
        nargs="+",
        type=Path,
        metavar="RUN_DIR",
        help="tabulate finished `nmt train` runs (word vs sentencepiece)",
    )
    sub = parser.add_subparsers(dest="what")
    dec = sub.add_parser("decoding", help="greedy / beam x length penalty on one checkpoint")
    dec.add_argument("--checkpoint", required=True)
    dec.add_argument("--name", required=True, help="a name for the section and output folder")
    dec.add_argument("--split", default="val")
    dec.add_argument(
        "--grid",
        nargs="+",
        default=["1", "5:0", "5:0.6", "5:1.0", "10:0.6", "10:1.0"],
        help="BEAM[:LENGTH_PENALTY] entries; beam 1 is greedy",
    )
    sw = sub.add_parser("sweep", help="tabulate a Hydra multirun of `nmt train`")
    sw.add_argument("sweep_dir", type=Path)
    sw.add_argument("--note", help="a sentence printed under the section's heading")
    smp = sub.add_parser("sampling", help="how much subword sampling lengthens the pieces")
    smp.add_argument("overrides", nargs="*", help="`nmt train` overrides (data, tokenizer)")
    smp.add_argument("--grid", nargs="+", default=["0.1", "0.1:64", "0.2", "0.5", "1.0"])
    smp.add_argument("--pairs", type=int, default=2000, help="training pairs to measure")
    args = parser.parse_args()
    if args.tokenizer_compare:
        run_tokenizer_compare(args.tokenizer_compare)
    elif args.what is None:
        parser.error("give a command (decoding, sweep) or --tokenizer-compare RUN_DIR ...")
    elif args.what == "decoding":
        run_decoding(args)
    elif args.what == "sampling":
        run_sampling(args)
    else:
        run_sweep(args)


if __name__ == "__main__":
    main()
