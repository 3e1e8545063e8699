#!/usr/bin/env python
"""Train (or reuse, or resume) each run of the results plan, evaluate it on
every test split found locally, and write docs/results.md and docs/results.json.

    python scripts/results.py                       # every planned run
    python scripts/results.py --only luong_best.de-en default.de-en   # some of them
    python scripts/results.py --no-train            # the table from the runs on disk
    python scripts/results.py --extra trainer.max_minutes=null trainer.device=cuda  # a GPU

The plan (PLAN below) gives each run its recipe, direction and budget on the
2-core CPU.  A run interrupted part way (its dir has checkpoints/last.pt but no
summary.json) is resumed with `trainer.resume_from`, keeping its time budget.
A run that `continues` another (the 60-minute row of a 20-minute run) starts
as a copy of that finished run and resumes it with the larger budget, so the
two rows cost 60 minutes, not 80.  Every figure in the table comes from a
run's own files and from `nmt evaluate` on its best checkpoint; rows that
could not be run are left out, never guessed.  Rows already in
docs/results.json whose runs are not on this disk (another machine, an
earlier checkout) are kept as they were, with their own date and device; a
new row replaces the old one of the same recipe, direction, split and budget.
A row's command reproduces it (train, then evaluate).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _common import (
    ROOT,
    decoding_overrides,
    machine,
    nmt_command,
    public_paths,
    replace_section,
    section_of,
)

from nmt.training.logger import MetricsLog


@dataclass(frozen=True)
class Planned:
    """One run of the table: a recipe in a direction, with a CPU budget."""

    recipe: str
    direction: str
    minutes: float
    threads: int = 1
    tag: str = ""  # tells apart two runs of one recipe and direction (their budgets)
    continues: str | None = None  # the finished run (name) this one goes on from
    seed: int | None = None  # trainer.seed of an ensemble member, which keeps its snapshots

    @property
    def name(self) -> str:
        return f"{self.recipe}.{self.direction}{self.tag}"

    @property
    def recipe_dir(self) -> tuple[str, str]:
        return self.recipe, self.direction

    @property
    def model(self) -> str:
        """What the row's model is: one run, or one seed of an ensemble's members."""
        return "single" if self.seed is None else f"seed {self.seed}"


# an ensemble member keeps its newest epoch snapshots; its average row averages them
AVERAGE_LAST = 5


def seeds(recipe: str, direction: str, minutes: float, count: int = 3) -> list[Planned]:
    """``count`` runs of one recipe that differ only in ``trainer.seed`` (1, 2, ...)."""
    return [
        Planned(recipe, direction, minutes, tag=f".seed{s}", seed=s) for s in range(1, count + 1)
    ]


@dataclass(frozen=True)
class Ensemble:
    """The rows made from finished planned runs of one recipe and direction: the
    ensemble of the members' best checkpoints (``checkpoint=[a,b,c]``)."""

    recipe: str
    direction: str
    members: tuple[str, ...]  # names of planned runs

    @property
    def name(self) -> str:
        return f"{self.recipe}.{self.direction}.ensemble{len(self.members)}"


# Every single model trains to early stop or to 60 minutes, whichever comes
# first, as two 1-thread runs side by side on the 2-core CPU (the default
# recipe alone on both cores for 20 minutes: its target is stated so).  Into
# English the `<family>_best` recipes (tuned on de->en), out of English the
# `_en_<lang>` ones (tuned on en->de; docs/tuning.md).  The short budgets of
# the first plan (5 to 10 minutes) stay until their 60-minute run lands.
PLAN = [
    Planned("default", "de-en", 20, threads=2),
    # the best RNN and the Transformer at equal time (20 and 60 minutes), side
    # by side, one thread each, so that both see the same machine
    Planned("luong_best", "de-en", 20, tag=".20m"),
    Planned("luong_best", "de-en", 60, tag=".60m", continues="luong_best.de-en.20m"),
    Planned("transformer_best", "de-en", 20, tag=".20m"),
    Planned("transformer_best", "de-en", 60, tag=".60m", continues="transformer_best.de-en.20m"),
    # an ensemble: three seeds of the best RNN recipe (members converge in half an hour)
    *seeds("luong_best", "de-en", 60),
    Planned("bahdanau_best", "de-en", 10),
    Planned("bahdanau_best", "de-en", 60, tag=".60m"),
    Planned("cho_best", "de-en", 60, tag=".60m"),
    Planned("sutskever_best", "de-en", 60, tag=".60m"),
    Planned("luong_best_en_de", "en-de", 20, tag=".20m"),
    Planned("luong_best_en_de", "en-de", 60, tag=".60m", continues="luong_best_en_de.en-de.20m"),
    Planned("transformer_best_en_de", "en-de", 20, tag=".20m"),
    Planned(
        "transformer_best_en_de",
        "en-de",
        60,
        tag=".60m",
        continues="transformer_best_en_de.en-de.20m",
    ),
    *seeds("luong_best_en_de", "en-de", 60),
    Planned("bahdanau_best_en_de", "en-de", 10),
    Planned("bahdanau_best_en_de", "en-de", 60, tag=".60m"),
    Planned("cho_best_en_de", "en-de", 5),
    Planned("cho_best_en_de", "en-de", 60, tag=".60m"),
    Planned("sutskever_best_en_de", "en-de", 5),
    Planned("sutskever_best_en_de", "en-de", 60, tag=".60m"),
    Planned("luong_best", "fr-en", 8),
    Planned("luong_best", "fr-en", 60, tag=".60m"),
    Planned("luong_best_en_fr", "en-fr", 8),
    Planned("luong_best_en_fr", "en-fr", 60, tag=".60m"),
    Planned("luong_best", "cs-en", 8),
    Planned("luong_best", "cs-en", 60, tag=".60m"),
    Planned("luong_best_en_cs", "en-cs", 8),
    Planned("luong_best_en_cs", "en-cs", 60, tag=".60m"),
]
ENSEMBLES = [
    Ensemble(
        p.recipe,
        p.direction,
        tuple(q.name for q in PLAN if q.seed and q.recipe_dir == p.recipe_dir),
    )
    for p in PLAN
    if p.seed == 1
]
TEST_SPLITS = ["test_2016_flickr", "test_2017_flickr", "test_2017_mscoco", "test_2018_flickr"]
# what resuming adds to a run's recorded overrides; not part of its recipe
RUN_ONLY_KEYS = ("hydra.run.dir=", "trainer.resume_from=")


def train_overrides(plan: Planned, extra: list[str]) -> list[str]:
    src, tgt = plan.direction.split("-")
    overrides = [] if plan.recipe == "default" else [f"experiment={plan.recipe}"]
    budget = [f"trainer.max_minutes={plan.minutes:g}", f"threads={plan.threads}"]
    if plan.seed is not None:
        budget += [f"trainer.seed={plan.seed}", f"trainer.keep_last={AVERAGE_LAST}"]
    return [*overrides, f"data.src_lang={src}", f"data.tgt_lang={tgt}", *budget, *extra]


def start_from(run_dir: Path, source: Path) -> bool:
    """Make ``run_dir`` a copy of the finished run ``source`` to resume (its
    checkpoints, logs and Hydra record; not its summary or evaluations)."""
    if not (source / "summary.json").is_file():
        print(f"{run_dir.name}: {source.name} has not finished; left out", flush=True)
        return False
    if not (run_dir / "checkpoints" / "last.pt").is_file():
        shutil.copytree(source, run_dir, ignore=shutil.ignore_patterns("summary.json", "eval"))
    return True


def train(run_dir: Path, overrides: list[str]) -> bool:
    """Train into ``run_dir``; resume there when an earlier attempt stopped."""
    if (run_dir / "checkpoints" / "last.pt").is_file():
        print(f"{run_dir.name}: resuming the interrupted run", flush=True)
        overrides = [*overrides, f"trainer.resume_from={run_dir}"]
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


def newer(made: Path, inputs: list[Path]) -> bool:
    """Whether ``made`` exists and was written after every one of ``inputs``
    (a retrained run's checkpoints make its old reports and averages stale)."""
    if not made.is_file():
        return False
    return all(made.stat().st_mtime >= path.stat().st_mtime for path in inputs)


def checkpoint_arg(checkpoints: list[Path]) -> str:
    """`nmt evaluate`'s checkpoint= value: one file, or a list (an ensemble)."""
    if len(checkpoints) == 1:
        return shown(checkpoints[0])
    return "[" + ",".join(shown(c) for c in checkpoints) + "]"


def evaluate(
    checkpoints: list[Path], out: Path, split: str, extra: list[str]
) -> dict[str, Any] | None:
    """`nmt evaluate`'s report of ``checkpoints`` on ``split``, kept in ``out/split``
    and reused while the overrides stay the same; None when it fails."""
    out = out / split
    cmd = [
        *nmt_command(),
        "evaluate",
        f"checkpoint={checkpoint_arg(checkpoints)}",
        f"split={split}",
        f"output_dir={out}",
        *extra,
    ]
    report_path = out / "report.json"
    if newer(report_path, checkpoints):  # evaluated these files before: reuse
        found = json.loads(report_path.read_text())
        if found.get("eval_overrides") == extra and "bleu_moses_lc" in found:
            return found
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no error text"])[-1]
        print(f"  {split}: skipped ({reason})", flush=True)
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
    """The overrides the run was trained with (Hydra's record), minus its run dir
    and the resume of an interrupted attempt."""
    import yaml

    path = run_dir / ".hydra" / "overrides.yaml"
    overrides = yaml.safe_load(path.read_text()) if path.is_file() else []
    return [o for o in overrides if not o.startswith(RUN_ONLY_KEYS)]


def split_available(split: str, direction: str) -> bool:
    from nmt.data.corpus import MULTI30K_SPLITS

    return all(lang in MULTI30K_SPLITS[split] for lang in direction.split("-"))


def shown(path: Path) -> str:
    """``path`` as a row's command gives it: relative to the repo when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def stop_reason(summary: dict[str, Any], trainer: dict[str, Any]) -> str:
    """Why training ended: early stopping (``trainer.patience`` epochs without a
    better checkpoint), its epoch limit, or the time budget."""
    epochs, best, patience = summary["epochs"], summary.get("best_epoch"), trainer.get("patience")
    if patience is not None and best is not None and epochs - best >= patience:
        return "early stop"
    if epochs >= trainer.get("max_epochs", float("inf")):
        return "max epochs"
    return "budget" if trainer.get("max_minutes") is not None else "finished"


def run_facts(run_dir: Path) -> dict[str, Any]:
    """What every row of one finished run shares: size, training, budget, device."""
    import yaml

    summary = json.loads((run_dir / "summary.json").read_text())
    config = yaml.safe_load((run_dir / ".hydra" / "config.yaml").read_text()) or {}
    best = best_epoch_record(run_dir, summary.get("best_epoch"))
    trainer = config.get("trainer") or {}
    return {
        "stopped": stop_reason(summary, trainer),
        "val_ppl": round(best.get("val_ppl", float("nan")), 2),
        "params": summary["params"],
        "epochs": epochs_done(run_dir, summary),
        "best_epoch": summary.get("best_epoch"),
        "budget_min": (config.get("trainer") or {}).get("max_minutes"),
        "device": summary["device"],
        "threads": summary.get("cpu_threads"),
        "machine": machine(summary["device"], summary.get("cpu_threads")),
        "wall_time_s": summary["train_time_s"],
        "cpu_min": round(summary["train_time_s"] / 60 * (summary.get("cpu_threads") or 1), 1),
        "date": dt.datetime.fromtimestamp((run_dir / "summary.json").stat().st_mtime)
        .date()
        .isoformat(),
    }


def train_command(run_dir: Path, plan: Planned) -> str:
    """The shell commands that train ``run_dir`` again (a continued run: its
    source's, a copy, then the resume)."""
    cmd = f"nmt train {' '.join(recorded_overrides(run_dir))} hydra.run.dir={shown(run_dir)}"
    if plan.continues is None:
        return cmd
    source = run_dir.parent / plan.continues
    first = f"nmt train {' '.join(recorded_overrides(source))} hydra.run.dir={shown(source)}"
    copy = f"cp -r {shown(source)} {shown(run_dir)} && rm {shown(run_dir)}/summary.json"
    return f"{first} && {copy} && {cmd} trainer.resume_from={shown(run_dir)}"


def scored_rows(
    head: dict[str, Any],
    checkpoints: list[Path],
    out: Path,
    facts: dict[str, Any],
    train_cmd: str,
    args: argparse.Namespace,
    recipe_run: Path,
) -> list[dict]:
    """One row per test split of ``head["direction"]`` that can be evaluated
    here, decoded as ``recipe_run``'s recipe says; ``head`` names the row
    (recipe, direction, run, model), ``facts`` describe the training behind
    it, and ``train_cmd`` repeats that training."""
    eval_extra = [*recipe_decoding(recipe_run), *args.eval_extra]
    rows = []
    for split in TEST_SPLITS:
        if not split_available(split, head["direction"]):
            continue
        report = evaluate(checkpoints, out, split, eval_extra)
        if report is None:
            args.missing_splits.add(split)
            continue
        eval_cmd = f"nmt evaluate 'checkpoint={checkpoint_arg(checkpoints)}' split={split}"
        scores = ("bleu", "bleu_lc", "bleu_tok_lc", "bleu_moses_lc", "chrf", "signature")
        rows.append(
            head
            | {"split": split}
            | {key: report[key] for key in scores}
            | {"ppl": round(report["ppl"], 2), **facts}
            | {"decoding": decoding_label(report.get("decoding", {}))}
            | {"command": f"{train_cmd} && {' '.join([eval_cmd, *eval_extra])}"}
        )
    return rows


def row_head(plan: Planned | Ensemble, run: str, model: str) -> dict[str, Any]:
    return {"recipe": plan.recipe, "direction": plan.direction, "run": run, "model": model}


def rows_for(run_dir: Path, plan: Planned, args: argparse.Namespace) -> list[dict]:
    """The run's rows (its best checkpoint), and for an ensemble member the rows
    of its average of its last ``AVERAGE_LAST`` epoch snapshots."""
    facts, train_cmd = run_facts(run_dir), train_command(run_dir, plan)
    head, best = row_head(plan, plan.name, plan.model), run_dir / "checkpoints" / "best.pt"
    rows = scored_rows(head, [best], run_dir / "eval", facts, train_cmd, args, run_dir)
    if plan.seed is None:
        return rows
    averaged = average_checkpoint(run_dir, args.runs_dir / f"{plan.name}.avg{AVERAGE_LAST}")
    if averaged is None:
        return rows
    head = row_head(plan, averaged.parent.name, f"average of last {AVERAGE_LAST}, {plan.model}")
    average = f"nmt average run={shown(run_dir)} last={AVERAGE_LAST} output={shown(averaged)}"
    cmd = f"{train_cmd} && {average}"
    facts |= {"val_ppl": None}  # the run's validation record is its best checkpoint's
    return rows + scored_rows(head, [averaged], averaged.parent / "eval", facts, cmd, args, run_dir)


def average_checkpoint(run_dir: Path, out_dir: Path) -> Path | None:
    """``nmt average`` of the run's newest ``AVERAGE_LAST`` snapshots into
    ``out_dir/average.pt`` (kept while newer than the run); None when it fails."""
    averaged = out_dir / "average.pt"
    if newer(averaged, [run_dir / "summary.json"]):
        return averaged
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [
        *nmt_command(),
        "average",
        f"run={run_dir}",
        f"last={AVERAGE_LAST}",
        f"output={averaged}",
    ]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode != 0:
        reason = (proc.stderr.strip().splitlines() or ["no error text"])[-1]
        print(f"{run_dir.name}: no average ({reason})", flush=True)
        return None
    return averaged


def ensemble_rows(ensemble: Ensemble, args: argparse.Namespace) -> list[dict]:
    """The ensemble's rows, when every member has finished: its cost is the sum
    of theirs."""
    runs = [args.runs_dir / name for name in ensemble.members]
    if not all((run / "summary.json").is_file() for run in runs):
        print(f"{ensemble.name}: not every member has finished; left out", flush=True)
        return []
    plans = {p.name: p for p in PLAN}
    facts = combined_facts([run_facts(run) for run in runs])
    train_cmd = " && ".join(train_command(run, plans[run.name]) for run in runs)
    seeds_label = ", ".join(str(plans[name].seed) for name in ensemble.members)
    head = row_head(ensemble, ensemble.name, f"ensemble of {len(runs)} (seeds {seeds_label})")
    best = [run / "checkpoints" / "best.pt" for run in runs]
    out = args.runs_dir / ensemble.name / "eval"
    return scored_rows(head, best, out, facts, train_cmd, args, runs[0])


def combined_facts(members: list[dict[str, Any]]) -> dict[str, Any]:
    """An ensemble's facts from its members': parameters, training time and CPU
    minutes add up; epochs and stops are listed member by member."""
    return members[0] | {
        "params": sum(m["params"] for m in members),
        "epochs": " / ".join(f"{m['epochs']}" for m in members),
        "members": [{k: m.get(k) for k in MEMBER_KEYS} for m in members],
        "val_ppl": None,  # no single model's validation perplexity
        "wall_time_s": sum(m["wall_time_s"] for m in members),
        "cpu_min": round(sum(m["cpu_min"] for m in members), 1),
    }


MEMBER_KEYS = ("stopped", "best_epoch", "epochs", "budget_min", "wall_time_s")


def decoding_label(decoding: dict[str, Any]) -> str:
    if decoding.get("strategy") == "beam":
        return f"beam {decoding['beam_size']}, lp {decoding['length_penalty']}"
    return str(decoding.get("strategy", "greedy"))


def marked_sections(path: Path) -> list[str]:
    """The sections other scripts keep in ``path`` between ``<!-- NAME:start -->``
    and ``<!-- NAME:end -->`` (scripts/average_report.py's, say, or
    ensemble_report.py's ``ensemble:beam5``), whole."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    pattern = re.compile(r"<!-- ([\w:-]+):start -->.*?<!-- \1:end -->", re.DOTALL)
    return [match.group(0) for match in pattern.finditer(text)]


def stopped_label(row: dict[str, Any]) -> str:
    """Why the run ended and its best epoch, and "still improving" when the
    budget cut a run whose last epoch was its best; an ensemble's, member
    by member.  Rows written before results.py recorded why: "budget" when
    training took the whole budget, else "-"."""
    if "members" in row:
        return " / ".join(stopped_label(member) for member in row["members"])
    budget, best = row.get("budget_min"), row.get("best_epoch")
    stopped = row.get("stopped")
    if stopped is None:  # rows of older runs: the budget ended a run that used all of it
        if budget is None or row["wall_time_s"] < budget * 60:
            return "-"
        stopped = "budget"
    label = f"{stopped} ({best if best is not None else '?'})"
    if stopped == "budget" and best is not None and best >= math.ceil(row["epochs"]):
        label += ", still improving"
    return label


def cpu_minutes(row: dict[str, Any]) -> float:
    """CPU minutes of training (rows of older runs: train time times threads)."""
    if "cpu_min" in row:
        return float(row["cpu_min"])
    return row["wall_time_s"] / 60 * (row.get("threads") or 1)


def budget_label(row: dict[str, Any]) -> str:
    minutes = row.get("budget_min")
    return "to early stop" if minutes is None else f"{minutes:g} min"


def write_markdown(rows: list[dict], path: Path, missing_splits: set[str]) -> None:
    """docs/results.md: the table and how to reproduce each row; the marked
    sections other scripts wrote there are kept, after them."""
    kept = marked_sections(path)
    lines = [
        "# Results on Multi30k",
        "",
        "Written by `scripts/results.py`; every figure comes from a run it trained,",
        "resumed or reused and from `nmt evaluate` on that run's best checkpoint.",
        "`BLEU` is sacreBLEU on detokenized output against the raw references",
        "(case-sensitive, signature below the table); `BLEU lc` is the same",
        "lower-cased.  `papers' BLEU` is the metric of the published Multi30k",
        "systems: BLEU on lower-cased, Moses-tokenized text (sacremoses, then",
        "sacreBLEU with `tokenize=none`); it is labelled, not sacreBLEU.",
        "Perplexity: exp of the teacher-forced NLL per target token (<eos> in, padding",
        "out); word and subword perplexities count different units.  `budget` is the",
        "run's `trainer.max_minutes` on `device`; `epochs` counts a last epoch the",
        "budget cut short as a fraction; `stopped` says what ended training (early",
        "stop after `trainer.patience` epochs without a better checkpoint, the epoch",
        "limit or the budget) and the best epoch, whose checkpoint is evaluated.  A",
        "row the budget stopped has not converged; `still improving` marks one whose",
        "last epoch (a cut one is validated too) was its best.  Rows of older runs did",
        "not record what stopped them: `budget` where training took all of it.  An",
        f"average row evaluates the mean of its member's last {AVERAGE_LAST} epoch",
        "checkpoints and shows its member's training.  `train time` is training alone.",
        "A `.60m` run goes on from the `.20m` run of its recipe (its command shows the",
        "copy and the resume).  Each row was decoded as its recipe says (`decoding`).",
        "`model`: one run (`single`), one of an ensemble's members (`seed N`: the",
        f"recipe with `trainer.seed=N`, keeping its last {AVERAGE_LAST} epoch checkpoints),",
        f"that member's average of those {AVERAGE_LAST} checkpoints (`nmt average`), or",
        "the ensemble of the members' best checkpoints (`nmt evaluate",
        "checkpoint=[a,b,c]`; its parameters, epochs and training add up over the",
        "members).  `CPU min` is what the row cost to train: training minutes times",
        "the torch threads, summed over an ensemble's members.",
        "",
        "| recipe | model | dir | split | decoding | BLEU | papers' BLEU | BLEU lc | chrF "
        "| test ppl | val ppl | params | epochs | stopped (best epoch) | budget | device "
        "| train time | CPU min |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        val_ppl = "-" if r.get("val_ppl") is None else f"{r['val_ppl']:.2f}"
        lines.append(
            f"| {r['recipe']} | {r.get('model', 'single')} | {r['direction']} | {r['split']} | "
            f"{r['decoding']} | {r['bleu']:.2f} | {r['bleu_moses_lc']:.2f} | {r['bleu_lc']:.2f} | "
            f"{r['chrf']:.2f} | {r['ppl']:.2f} | {val_ppl} | "
            f"{r['params'] / 1e6:.1f}M | {r['epochs']} | {stopped_label(r)} | {budget_label(r)} | "
            f"{r['machine']} | {r['wall_time_s'] / 60:.1f} min | {cpu_minutes(r):.0f} |"
        )
    signatures = sorted({r["signature"] for r in rows})
    lines += ["", "BLEU signature: " + ", ".join(f"`{s}`" for s in signatures)]
    if missing_splits:
        lines += [
            "",
            "Not found locally, so not in the table: "
            + ", ".join(sorted(missing_splits))
            + " (`nmt data` downloads them where the internet is reachable).",
        ]
    lines += targets(rows)
    lines += ["", "## How to reproduce", ""]
    for r in rows:
        lines.append(f"- {run_name(r)}, {r.get('model', 'single')}, {r['split']} ({r['date']}):")
        lines.append(f"  `{r['command']}`")
    lines += [line for section in kept for line in ["", section]]
    path.write_text(public_paths("\n".join(lines) + "\n"), encoding="utf-8")


@dataclass(frozen=True)
class Target:
    """A goal of the table: the best row of ``direction`` on ``split`` (of
    ``recipe`` only, when given; of ensembles, or of single models, which
    include a member's checkpoint average) reaching ``value`` on ``metric``."""

    label: str
    direction: str
    metric: str
    value: float
    recipe: str | None = None
    split: str = "test_2016_flickr"
    ensemble: bool = False

    def holds(self, row: dict[str, Any]) -> bool:
        """Whether ``row`` is one this target is measured on."""
        is_ensemble = row.get("model", "single").startswith("ensemble")
        return (
            row["direction"] == self.direction
            and row["split"] == self.split
            and (self.recipe is None or row["recipe"] == self.recipe)
            and is_ensemble == self.ensemble
        )


METRIC_NAMES = {"bleu": "sacreBLEU", "bleu_moses_lc": "papers' BLEU (lower-cased, Moses-tokenized)"}
# the best published RNN systems we know of on Multi30k (text-only conditional
# GRU, nmtpy, joint 10k BPE), papers' BLEU: quoted, not measured here
PUBLISHED = {
    ("en-de", "test_2016_flickr"): 39.00,
    ("en-fr", "test_2016_flickr"): 59.02,
    ("en-de", "test_2017_flickr"): 31.25,
    ("en-fr", "test_2017_flickr"): 51.93,
}
TARGETS = [
    Target("en->de against the best published RNN, single model", "en-de", "bleu_moses_lc", 39.0),
    Target("en->de, ensemble", "en-de", "bleu_moses_lc", 39.0, ensemble=True),
    Target("en->fr against the best published RNN, single model", "en-fr", "bleu_moses_lc", 59.0),
    Target("en->fr, ensemble", "en-fr", "bleu_moses_lc", 59.0, ensemble=True),
    Target("de->en, best recipe, single model", "de-en", "bleu", 40.0),
    Target("de->en, ensemble", "de-en", "bleu", 40.0, ensemble=True),
    Target("default recipe, 20 minutes on 2 CPU cores", "de-en", "bleu", 37.0, "default"),
]


def target_line(target: Target, rows: list[dict]) -> str:
    """One target as measured: met, not met (with the gap), or not measured."""
    found = [r for r in rows if target.holds(r)]
    goal = f"{METRIC_NAMES[target.metric]} >= {target.value:g} on {target.split}"
    if not found:
        return f"- {target.label}: {goal}: not measured (no row)."
    top = max(found, key=lambda r: r[target.metric])
    score = top[target.metric]
    verdict = "met" if score >= target.value else f"not met, {target.value - score:.2f} short"
    return (
        f"- {target.label}: {goal}; measured {score:.2f} ({top['recipe']}, "
        f"{top.get('model', 'single')}, {budget_label(top)} on {top['machine']}): **{verdict}**."
    )


def targets(rows: list[dict]) -> list[str]:
    lines = ["", "## Targets", ""]
    lines += [target_line(t, rows) for t in TARGETS]
    lines += ["", "Published figures held against (papers' BLEU, quoted, not measured here):", ""]
    for (direction, split), value in PUBLISHED.items():
        lines.append(f"- {direction} {split}: {value:.2f}")
    return lines


README_START, README_END = "<!-- results:best -->", "<!-- /results:best -->"
DIRECTIONS = ["de-en", "en-de", "fr-en", "en-fr", "cs-en", "en-cs"]


def readme_rows(rows: list[dict]) -> list[dict]:
    """test_2016_flickr: the best row of each direction (an ensemble, it may
    be), then the best single model of each model family in de->en."""
    main = [r for r in rows if r["split"] == "test_2016_flickr"]
    picked: list[dict] = []
    for direction in DIRECTIONS:
        found = [r for r in main if r["direction"] == direction]
        if found:
            picked.append(max(found, key=lambda r: r["bleu"]))
    by_family: dict[str, dict] = {}
    for r in main:
        family = r["recipe"].split("_")[0]
        single = not r.get("model", "single").startswith("ensemble")
        if (
            r["direction"] == "de-en"
            and single
            and r["bleu"] > by_family.get(family, {}).get("bleu", -1)
        ):
            by_family[family] = r
    families = sorted(by_family.values(), key=lambda r: -r["bleu"])
    return picked + [r for r in families if r not in picked]


def update_readme(rows: list[dict], readme: Path) -> None:
    """The rows of ``readme_rows`` between the README's markers (left alone when
    the README has none)."""
    text = readme.read_text(encoding="utf-8")
    if section_of(text, README_START, README_END) is None:
        return
    lines = [
        "| dir | recipe | model | BLEU | papers' BLEU | chrF | decoding | budget, device "
        "| trained | stopped (best epoch) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in readme_rows(rows):
        lines.append(
            f"| {r['direction']} | `{r['recipe']}` | {r.get('model', 'single')} | "
            f"{r['bleu']:.2f} | {r['bleu_moses_lc']:.2f} | {r['chrf']:.2f} | {r['decoding']} | "
            f"{budget_label(r)}, {r['machine']} | "
            f"{r['wall_time_s'] / 60:.1f} min, {r['epochs']} epochs | {stopped_label(r)} |"
        )
    block = f"{README_START}\n" + "\n".join(lines) + f"\n{README_END}"
    readme.write_text(replace_section(text, README_START, README_END, block), encoding="utf-8")
    print(f"updated the best rows in {readme}")


def run_name(row: dict) -> str:
    """The run behind a row (rows of the first plan did not record it: their
    runs were named ``recipe.direction``)."""
    return row.get("run") or f"{row['recipe']}.{row['direction']}"


def row_key(row: dict) -> tuple:
    return (run_name(row), row["split"], row.get("budget_min"))


def planned_runs() -> set[str]:
    """The run names the plan makes rows for: its runs, each seeded run's
    average, its ensembles."""
    averages = {f"{p.name}.avg{AVERAGE_LAST}" for p in PLAN if p.seed is not None}
    return {p.name for p in [*PLAN, *ENSEMBLES]} | averages


# single runs, ensemble members, each member's average, then the ensemble
MODEL_ORDER = ["single", "seed", "average", "ensemble"]


def merged_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """The rows of docs/results.json with ``new`` in: a new row replaces the old
    one with the same :func:`row_key`; the others are kept while the plan
    still has their run (a run taken out of PLAN, say a short budget that a
    longer one superseded, takes its rows with it).  Ordered as the plan
    lists the runs, then by budget."""
    planned = planned_runs()
    kept = [r for r in old if run_name(r) in planned]
    rows = {row_key(r): r for r in kept} | {row_key(r): r for r in new}
    order = {(p.recipe, p.direction): i for i, p in reversed(list(enumerate(PLAN)))}

    def position(r: dict) -> tuple:
        budget = r.get("budget_min")
        at = order.get((r["recipe"], r["direction"]), len(PLAN))
        model = MODEL_ORDER.index(r.get("model", "single").split(" ")[0])
        return (
            at,
            budget is None,
            budget or 0,
            model,
            run_name(r),
            TEST_SPLITS.index(r["split"]),
        )

    return sorted(rows.values(), key=position)


def selected(names: list[str] | None) -> list[Planned | Ensemble]:
    """The planned runs and ensembles ``names`` gives (all of them by default)."""
    if not names:
        return [*PLAN, *ENSEMBLES]
    known = {p.name: p for p in [*PLAN, *ENSEMBLES]}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise SystemExit(f"--only: no planned run {unknown}; known: {', '.join(known)}")
    return [known[n] for n in names]


def trained(plan: Planned, args: argparse.Namespace) -> Path | None:
    """The planned run's dir once it has finished (training, resuming or
    continuing it first unless ``--no-train``); None when it could not."""
    run_dir = args.runs_dir / plan.name
    if (run_dir / "summary.json").is_file():
        return run_dir
    if args.no_train:
        print(f"{plan.name}: no finished run in {run_dir}; left out")
        return None
    if plan.continues and not start_from(run_dir, args.runs_dir / plan.continues):
        return None
    if not train(run_dir, train_overrides(plan, args.extra)):
        print(f"{plan.name}: training failed or was stopped; left out")
        return None
    return run_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="RECIPE.DIR", help="these planned runs")
    parser.add_argument("--runs-dir", type=Path, default=ROOT / "outputs" / "results")
    parser.add_argument("--extra", nargs="*", default=[], help="train overrides for every run")
    parser.add_argument("--eval-extra", nargs="*", default=[], help="evaluate overrides")
    parser.add_argument("--no-train", action="store_true", help="only use finished runs")
    parser.add_argument("--no-write", action="store_true", help="train and evaluate only")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = parser.parse_args()
    args.runs_dir = args.runs_dir.resolve()
    args.missing_splits = set()

    rows: list[dict] = []
    for item in selected(args.only):
        if isinstance(item, Ensemble):
            rows += ensemble_rows(item, args)
        elif run_dir := trained(item, args):
            rows += rows_for(run_dir, item, args)
    if args.no_write:
        return
    md, js = args.out.with_suffix(".md"), args.out.with_suffix(".json")
    md.parent.mkdir(parents=True, exist_ok=True)
    rows = merged_rows(json.loads(js.read_text()) if js.is_file() else [], rows)
    js.write_text(json.dumps(rows, indent=2) + "\n", encoding="utf-8")
    write_markdown(rows, md, args.missing_splits)
    if rows:
        update_readme(rows, args.readme)
    print(f"wrote {md} and {js} ({len(rows)} rows)")


if __name__ == "__main__":
    main()
