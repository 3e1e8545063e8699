"""Try bad inputs against the installed `nmt` and write docs/reliability.md.

Every probe runs `nmt` in subprocesses inside a temp folder, on a tiny
synthetic corpus and a tiny model the script trains there first, and
compares what happens with the behaviour issue 15 asks for: one clear error
line (no traceback) for bad input, the line count kept for odd text, an exact
resume after a kill.  Each outcome is recorded honestly, PASS or FAIL.

    python scripts/reliability.py            # every probe (a few minutes)
    python scripts/reliability.py --quick    # the quick ones (about a minute)

``EXPECTED_PASS`` lists the probes that must pass; the test
``tests/integration/test_reliability.py`` runs the quick probes and holds
those to PASS.  A fix that makes another probe pass adds its name there.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import _probes as p
from _common import ROOT, command_line, machine, update_file_section
from _lab import Lab, Outcome, set_up


@dataclass(frozen=True)
class Probe:
    name: str
    quick: bool
    tried: str  # the bad input
    expected: str  # what nmt should do
    run: Callable[[Lab], Outcome | None]  # None: could not run here (the note says why)
    skip_reason: str = ""


ONE_LINE = "exit != 0, one `nmt X: error:` line naming it, no traceback"
PROBES = [
    Probe("odd_bytes_line_count", True, "translate: NUL-only, invalid UTF-8, U+200B-only, "
          "U+FEFF-only, empty, blank and a 10,000-word line", "exit 0, one output line per "
          "input line", p.odd_bytes_line_count),
    Probe("junk_lines_empty", True, "the same file: the NUL / U+200B / U+FEFF-only lines",
          "each comes back as an empty line", p.junk_lines_empty),
    Probe("nonfinite_length_penalty", True, "translate decoding.length_penalty=nan",
          ONE_LINE, p.nonfinite_length_penalty),
    Probe("nonfinite_lr", True, "train optimizer.lr=inf", ONE_LINE, p.nonfinite_lr),
    Probe("nonfinite_clip", True, "train trainer.clip_grad_norm=nan", ONE_LINE, p.nonfinite_clip),
    Probe("threads_invalid", True, "translate threads=0", ONE_LINE, p.threads_invalid),
    Probe("threads_recorded", True, "train threads=1 with OMP_NUM_THREADS=2",
          "1 thread used, recorded in summary.json", p.threads_recorded),
    Probe("progress_plain", True, "train with stderr not a terminal",
          "plain progress lines, no carriage return", p.progress_plain),
    Probe("malicious_refused", True, "a checkpoint whose pickle calls os.system",
          ONE_LINE + "; the command never runs", p.malicious_refused),
    Probe("malicious_message", True, "the same checkpoint",
          "the error names the refused global, no advice to turn weights_only off",
          p.malicious_message),
    Probe("truncated_checkpoint", True, "best.pt cut to half its size", ONE_LINE,
          p.truncated_checkpoint),
    Probe("damaged_checkpoint", True, "best.pt with 1 KB inside a tensor overwritten",
          ONE_LINE, p.damaged_checkpoint),
    Probe("output_parent_is_file", True, "translate output=FILE/out.txt",
          ONE_LINE + "; no temp file left", p.output_parent_is_file),
    Probe("output_is_directory", True, "translate output=DIR",
          ONE_LINE + "; no temp file left", p.output_is_directory),
    Probe("empty_train_file", True, "train data=files with a blank-only training file",
          ONE_LINE, p.empty_train_file),
    Probe("empty_val_file", True, "train data=files with a blank-only validation file",
          ONE_LINE, p.empty_val_file),
    Probe("checksum_mismatch", True, "nmt data on a Multi30k copy with val.de.gz changed",
          ONE_LINE, p.checksum_mismatch, "needs $NMT_DATA_DIR with the Multi30k files"),
    Probe("beam_20000", False, "translate decoding.beam_size=20000", ONE_LINE, p.beam_20000),
    Probe("run_dir_holds_run", False, "train into a run dir that holds a finished run",
          ONE_LINE + " offering trainer.resume_from", p.run_dir_holds_run),
    Probe("two_trainings_one_dir", False, "a second train into the same run dir 4 s later",
          "one finishes, the other is refused with one line", p.two_trainings_one_dir),
    Probe("sigkill_resume", False, "SIGKILL mid-run, then trainer.resume_from=RUN",
          "the resumed run's epochs equal an uninterrupted run's", p.sigkill_resume),
    Probe("sigterm_resume", False, "SIGTERM mid-run, then trainer.resume_from=RUN",
          "the resumed run's epochs equal an uninterrupted run's", p.sigterm_resume),
]  # fmt: skip

# every probe passes since the issue-15 fixes landed; a new probe joins when its fix does
EXPECTED_PASS = {probe.name for probe in PROBES}


def run_probes(
    root: Path, quick: bool, names: set[str] | None = None
) -> tuple[dict[str, Outcome], float]:
    """Set up the lab in ``root`` and run the chosen probes: (name -> outcome,
    seconds the set-up took)."""
    lab = set_up(root)
    results: dict[str, Outcome] = {}
    for probe in PROBES:
        if (quick and not probe.quick) or (names is not None and probe.name not in names):
            continue
        began = time.perf_counter()
        outcome = probe.run(lab)
        if outcome is None:
            outcome = Outcome(False, None, note=f"not run: {probe.skip_reason}")
        outcome.note = f"{outcome.note} ({time.perf_counter() - began:.1f} s)".strip()
        results[probe.name] = outcome
        print(f"{verdict(outcome):<8} {probe.name}: {outcome.first_error or outcome.note}")
    return results, lab.memo["setup_s"]


def verdict(outcome: Outcome) -> str:
    if outcome.rc is None and outcome.note.startswith("not run"):
        return "SKIPPED"
    return "PASS" if outcome.passed else "FAIL"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ") or "-"


def table(results: dict[str, Outcome], quick: bool) -> str:
    rows = [
        "| probe | bad input | expected | exit | first error line | outcome |",
        "|---|---|---|---|---|---|",
    ]
    for probe in (pr for pr in PROBES if pr.quick == quick and pr.name in results):
        out = results[probe.name]
        rows.append(
            f"| `{probe.name}` | {cell(probe.tried)} | {cell(probe.expected)} | "
            f"{'-' if out.rc is None else out.rc} | {cell(out.first_error)} | "
            f"**{verdict(out)}** {cell(out.note)} |"
        )
    return "\n".join(rows)


HEADER = """# Reliability

Bad inputs tried against the installed `nmt` by `scripts/reliability.py`, with
what `nmt` should do and what it did.  Quick probes run in `make test`
(`tests/integration/test_reliability.py`); slow ones only from the script.

## Threads

`threads=N` (train, evaluate, translate, serve) sets torch's CPU threads at
the start of the command.  Left null it takes `$OMP_NUM_THREADS`; in a sweep
with a parallel launcher (`nmt train -m hydra/launcher=joblib
hydra.launcher.n_jobs=N ...`, from the optional `sweep` extra) it splits the
cores, `max(1, cores // N)` per job; otherwise torch's default (all cores).
summary.json records the count as `cpu_threads`.
"""


def write_report(path: Path, results: dict[str, Outcome], quick: bool, setup_s: float) -> None:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    kind = "quick" if quick else "slow"
    start, end = f"<!-- reliability:{kind} -->", f"<!-- /reliability:{kind} -->"
    block = "\n".join(
        [
            start,
            f"## {kind.capitalize()} probes",
            "",
            f"`{command_line('reliability.py')}`, {when}, {machine()}; "
            f"set-up (corpus and a 1-epoch tiny model) {setup_s:.0f} s.",
            "",
            table(results, quick),
            end,
        ]
    )
    update_file_section(path, start, end, block, HEADER)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the quick probes")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nmt-reliability-") as tmp:
        results, setup_s = run_probes(Path(tmp), args.quick)
    quick = {k: v for k, v in results.items() if next(x for x in PROBES if x.name == k).quick}
    write_report(args.out, quick, True, setup_s)
    if not args.quick:
        slow = {k: v for k, v in results.items() if k not in quick}
        write_report(args.out, slow, False, setup_s)
    regressions = [n for n, o in results.items() if n in EXPECTED_PASS and verdict(o) == "FAIL"]
    print(f"wrote {args.out}; expected to pass but failed: {regressions or 'none'}")
    return 1 if regressions else 0


if __name__ == "__main__":
    sys.exit(main())
