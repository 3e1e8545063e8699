#!/usr/bin/env python
"""Train (or reuse) a run per recipe and direction, evaluate it on every test
split found locally, and write docs/results.md and docs/results.json.

    python scripts/results.py                       # every recipe, de-en
    python scripts/results.py --recipes bahdanau_seed luong_seed --directions de-en en-de
    python scripts/results.py --runs-dir outputs/results --no-train   # table from finished runs
    python scripts/results.py --extra trainer.max_minutes=15            # a CPU budget

Every figure in the table comes from a run's own files and from `nmt evaluate`
on its best checkpoint; rows that could not be run are left out, never guessed.
A row's command reproduces it (train, then evaluate).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import re
import subprocess
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    decoding_overrides,
    machine,
    nmt_command,
    replace_section,
    section_of,
)

from nmt.training.logger import MetricsLog

DEFAULT_RECIPES = [
    "default",
    "sutskever_seed",
    "cho_seed",
    "bahdanau_seed",
    "luong_seed",
    "sutskever_best",
    "cho_best",
    "bahdanau_best",
    "luong_best",
]
TEST_SPLITS = ["test_2016_flickr", "test_2017_flickr", "test_2017_mscoco", "test_2018_flickr"]


def train_overrides(recipe: str, direction: str, extra: list[str]) -> list[str]:
    src, tgt = direction.split("-")
    overrides = [] if recipe == "default" else [f"experiment={recipe}"]
    return [*overrides, f"data.src_lang={src}", f"data.tgt_lang={tgt}", *extra]


def run_dir_for(runs_dir: Path, recipe: str, direction: str) -> Path:
    return runs_dir / f"{recipe}.{direction}"


def train(run_dir: Path, overrides: list[str]) -> bool:
    cmd = [*nmt_command(), "train", *overrides, f"hydra.run.dir={run_dir}"]
    print("+", " ".join(cmd), flush=True)
    return subprocess.run(cmd, cwd=ROOT).returncode == 0


def recipe_decoding(run_dir: Path) -> list[str]:
    """The decoding the run's recipe asks for (greedy, or beam with its width and
    length penalty), as `nmt evaluate` overrides."""
    import yaml

    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text())
    decoding = config.get("decoding") or {}
    if decoding.get("strategy") != "beam":
        return []
    return decoding_overrides(decoding["beam_size"], decoding["length_penalty"])


def evaluate(run_dir: Path, split: str, extra: list[str]) -> dict[str, Any] | None:
    out = run_dir / "eval" / split
    cmd = [
        *nmt_command(),
        "evaluate",
        f"checkpoint={run_dir / 'checkpoints' / 'best.pt'}",
        f"split={split}",
        f"output_dir={out}",
        *extra,
    ]
    report_path = out / "report.json"
    if report_path.is_file():  # evaluated before with the same overrides: reuse
        found = json.loads(report_path.read_text())
        if found.get("eval_overrides") == extra:
            return found
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"  {split}: skipped ({proc.stderr.strip().splitlines()[-1:]})", flush=True)
        return None
    found = json.loads(proc.stdout.strip().splitlines()[-1])
    found["eval_overrides"] = extra
    report_path.write_text(json.dumps(found, indent=2) + "\n", encoding="utf-8")
    return found


def epochs_done(run_dir: Path, summary: dict[str, Any]) -> float:
    """Epochs trained, counting a last one a time budget cut short as a fraction
    (steps over the steps of the first full epoch)."""
    epochs = MetricsLog(run_dir).epoch_records()
    first = next((r for r in epochs if r.get("epoch") == 1), None)
    if not first or not first.get("step"):
        return float(summary["epochs"])
    return round(min(summary["steps"] / first["step"], summary["epochs"]), 1)


def best_epoch_record(run_dir: Path, best_epoch: int | None) -> dict[str, Any]:
    epochs = MetricsLog(run_dir).epoch_records()
    for r in epochs:
        if r["epoch"] == best_epoch:
            return r
    return epochs[-1] if epochs else {}


def recorded_overrides(run_dir: Path) -> list[str]:
    """The overrides the run was trained with (Hydra's record), minus its run dir."""
    import yaml

    path = run_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(path.read_text()) if path.is_file() else []
    return [o for o in overrides if not o.startswith("hydra.run.dir=")]


def split_available(split: str, direction: str) -> bool:
    from nmt.data.corpus import MULTI30K_SPLITS

    return all(lang in MULTI30K_SPLITS[split] for lang in direction.split("-"))


def rows_for(run_dir: Path, recipe: str, direction: str, args: argparse.Namespace) -> list[dict]:
    summary = json.loads((run_dir / "summary.json").read_text())
    best = best_epoch_record(run_dir, summary.get("best_epoch"))
    overrides = recorded_overrides(run_dir)
    eval_extra = [*recipe_decoding(run_dir), *args.eval_extra]
    rows = []
    for split in TEST_SPLITS:
        if not split_available(split, direction):
            continue
        report = evaluate(run_dir, split, eval_extra)
        if report is None:
            continue
        rows.append(
            {
                "recipe": recipe,
                "direction": direction,
                "split": split,
                "bleu": report["bleu"],
                "bleu_lc": report["bleu_lc"],
                "bleu_tok_lc": report["bleu_tok_lc"],
                "chrf": report["chrf"],
                "ppl": round(report["ppl"], 2),
                "val_ppl": round(best.get("val_ppl", float("nan")), 2),
                "params": summary["params"],
                "epochs": epochs_done(run_dir, summary),
                "best_epoch": summary.get("best_epoch"),
                "device": summary["device"],
                "machine": machine(summary["device"], summary.get("cpu_threads")),
                "wall_time_s": summary["train_time_s"],
                "signature": report["signature"],
                "decoding": decoding_label(report.get("decoding", {})),
                "command": (
                    f"nmt train {' '.join(overrides)} hydra.run.dir={run_dir.relative_to(ROOT)} && "
                    f"nmt evaluate checkpoint={run_dir.relative_to(ROOT)}/checkpoints/best.pt "
                    f"split={split} {' '.join(eval_extra)}".strip()
                ),
                "date": dt.datetime.fromtimestamp(
                    (run_dir / "summary.json").stat().st_mtime
                ).strftime("%Y-%m-%d"),
            }
        )
    return rows


def decoding_label(decoding: dict[str, Any]) -> str:
    if decoding.get("strategy") == "beam":
        return f"beam {decoding['beam_size']}, lp {decoding['length_penalty']}"
    return str(decoding.get("strategy", "greedy"))


def marked_sections(path: Path) -> list[str]:
    """The sections other scripts keep in ``path`` between ``<!-- NAME:start -->``
    and ``<!-- NAME:end -->`` (scripts/average_report.py's, say), whole."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    pattern = re.compile(r"<!-- ([\w-]+):start -->.*?<!-- \1:end -->", re.DOTALL)
    return [match.group(0) for match in pattern.finditer(text)]


def write_markdown(rows: list[dict], path: Path) -> None:
    """docs/results.md: the table and how to reproduce each row; the marked
    sections other scripts wrote there are kept, after them."""
    kept = marked_sections(path)
    lines = [
        "# Results on Multi30k",
        "",
        "Written by `scripts/results.py`; every figure comes from a run it trained or",
        "reused and from `nmt evaluate` on that run's best checkpoint.  BLEU is",
        "sacreBLEU on detokenized output against the raw references (case-sensitive,",
        "signature below each table); `BLEU lc` is the same lower-cased; `tok BLEU`",
        "is the tutorials' tokenized lower-cased BLEU (labelled, not comparable).",
        "Perplexity: exp of the teacher-forced NLL per target token (<eos> in, padding out).",
        "`epochs` counts a last epoch cut short by a time budget (`trainer.max_minutes` in",
        "the row's command) as a fraction; `train time` is training alone, without the",
        "final evaluation.  Each row was decoded as its recipe says (`decoding`).",
        "",
        "| recipe | dir | split | decoding | BLEU | BLEU lc | tok BLEU | chrF | test ppl "
        "| val ppl | params | epochs | device | train time |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['recipe']} | {r['direction']} | {r['split']} | {r['decoding']} | "
            f"{r['bleu']:.2f} | "
            f"{r['bleu_lc']:.2f} | {r['bleu_tok_lc']:.2f} | {r['chrf']:.2f} | {r['ppl']:.2f} | "
            f"{r['val_ppl']:.2f} | {r['params'] / 1e6:.1f}M | {r['epochs']} | {r['machine']} | "
            f"{r['wall_time_s'] / 60:.1f} min |"
        )
    lines += targets(rows)
    signatures = sorted({r["signature"] for r in rows})
    lines += ["", "BLEU signature: " + ", ".join(f"`{s}`" for s in signatures), ""]
    lines += ["## How to reproduce", ""]
    for r in rows:
        lines.append(f"- {r['recipe']} {r['direction']} {r['split']} ({r['date']}):")
        lines.append(f"  `{r['command']}`")
    lines += [line for section in kept for line in ["", section]]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# What the seed tutorials report (de->en, test set, 10 epochs): the figures the
# seed recipes are held against.  Quoted, not measured here.
TUTORIAL_LSTM_PPL = 51.6
TUTORIAL_ATTENTION_TOK_BLEU = 28.0
TARGET_BEST_ATTENTION_BLEU = 38.0


def targets(rows: list[dict]) -> list[str]:
    """The issue's targets, checked against the de->en test_2016_flickr rows."""
    main = {
        r["recipe"]: r
        for r in rows
        if r["direction"] == "de-en" and r["split"] == "test_2016_flickr"
    }
    lines = ["", "## Targets (de->en, test_2016_flickr)", ""]
    lstm = main.get("sutskever_seed")
    if lstm:
        verdict = "better" if lstm["ppl"] < TUTORIAL_LSTM_PPL else "not better"
        lines.append(
            f"- LSTM seed: test ppl {lstm['ppl']:.2f} after {lstm['epochs']} epochs vs "
            f"{TUTORIAL_LSTM_PPL} the tutorial reports after 10 epochs: {verdict}."
        )
    for name in ("bahdanau_seed", "luong_seed"):
        if name in main:
            r = main[name]
            verdict = "met" if r["bleu_tok_lc"] >= TUTORIAL_ATTENTION_TOK_BLEU else "not met"
            lines.append(
                f"- {name}: tokenized lower-cased BLEU {r['bleu_tok_lc']:.2f} (sacreBLEU "
                f"{r['bleu']:.2f}) after {r['epochs']} epochs vs about "
                f"{TUTORIAL_ATTENTION_TOK_BLEU:.0f} the attention tutorial reports: {verdict}."
            )
    attention = [r for r in main.values() if r["recipe"].split("_")[0] in ("bahdanau", "luong")]
    if attention:
        top = max(attention, key=lambda r: r["bleu"])
        verdict = "met" if top["bleu"] >= TARGET_BEST_ATTENTION_BLEU else "not met"
        lines.append(
            f"- Best attention recipe: {top['recipe']} at {top['bleu']:.2f} sacreBLEU vs the "
            f"target of {TARGET_BEST_ATTENTION_BLEU:.0f}: {verdict}."
        )
    return lines


README_START, README_END = "<!-- results:best -->", "<!-- /results:best -->"


def update_readme(rows: list[dict], readme: Path) -> None:
    """The best de->en test_2016_flickr row of each model family, between the
    README's markers (left alone when the README has none)."""
    text = readme.read_text(encoding="utf-8")
    if section_of(text, README_START, README_END) is None:
        return
    best: dict[str, dict] = {}
    for r in rows:
        if r["direction"] != "de-en" or r["split"] != "test_2016_flickr":
            continue
        family = r["recipe"].split("_")[0]
        if family not in best or r["bleu"] > best[family]["bleu"]:
            best[family] = r
    lines = [
        "| recipe | BLEU | BLEU lc | chrF | test ppl | decoding | device | train time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in sorted(best.values(), key=lambda r: -r["bleu"]):
        lines.append(
            f"| `{r['recipe']}` | {r['bleu']:.2f} | {r['bleu_lc']:.2f} | {r['chrf']:.2f} | "
            f"{r['ppl']:.2f} | {r['decoding']} | {r['machine']} | "
            f"{r['wall_time_s'] / 60:.1f} min, {r['epochs']} epochs |"
        )
    block = f"{README_START}\n" + "\n".join(lines) + f"\n{README_END}"
    readme.write_text(replace_section(text, README_START, README_END, block), encoding="utf-8")
    print(f"updated the best rows in {readme}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", nargs="+", default=DEFAULT_RECIPES)
    parser.add_argument("--directions", nargs="+", default=["de-en"])
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "outputs" / "results")
    parser.add_argument("--extra", nargs="*", default=[], help="train overrides for every run")
    parser.add_argument("--eval-extra", nargs="*", default=[], help="evaluate overrides")
    parser.add_argument("--no-train", action="store_true", help="only use finished runs")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    args.runs_dir = args.runs_dir.resolve()

    rows: list[dict] = []
    for recipe in args.recipes:
        for direction in args.directions:
            run_dir = run_dir_for(args.runs_dir, recipe, direction)
            if not (run_dir / "summary.json").is_file():
                if args.no_train:
                    print(f"{recipe} {direction}: no finished run in {run_dir}; left out")
                    continue
                if not train(run_dir, train_overrides(recipe, direction, args.extra)):
                    print(f"{recipe} {direction}: training failed; left out")
                    continue
            rows += rows_for(run_dir, recipe, direction, args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    write_markdown(rows, args.out.with_suffix(".md"))
    if rows:
        update_readme(rows, args.readme)
    md, js = args.out.with_suffix(".md"), args.out.with_suffix(".json")
    print(f"wrote {md} and {js} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
