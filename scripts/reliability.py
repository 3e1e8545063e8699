"""Run the reliability probes (tests/reliability) and write docs/reliability.md.

The probes are pytest tests: each runs the installed `nmt` in subprocesses on
a tiny synthetic corpus and model, with one bad input, and compares what
happens with what the issues ask for (one clear error line, no clobbered
file, an exact resume, ...).  ``make test`` runs the quick ones; this script
runs them all (the slow ones too) and tabulates every outcome, PASS or FAIL.

    python scripts/reliability.py            # every probe (a few minutes)
    python scripts/reliability.py --quick    # the quick ones (about a minute)
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import ROOT, command_line, machine, update_file_section

HEADER = """# Reliability

Bad inputs tried against the installed `nmt` by the probes in
`tests/reliability/`, with what `nmt` should do and what it did.  `make test`
runs the quick probes; `scripts/reliability.py` runs them all and writes this
page.  Paths in error lines are shown under `LAB/`, the probes' temp folder.
**EXPECTED FAIL** marks a probe of an item another piece of work owns (named
beside it): it fails until that work lands, and is not counted as a failure.

## Threads

`threads=N` (train, evaluate, translate, serve) sets torch's CPU threads at
the start of the command.  Left null it takes `$OMP_NUM_THREADS`; in a sweep
with a parallel launcher (`nmt train -m hydra/launcher=joblib
hydra.launcher.n_jobs=N ...`, from the optional `sweep` extra) it splits the
cores, `max(1, cores // N)` per job; otherwise torch's default (all cores).
summary.json records the count as `cpu_threads`.
"""


def run_probes(slow: bool, report: Path) -> tuple[dict[str, Any], float]:
    """Run pytest on tests/reliability; (its JSON report, seconds it took)."""
    env = os.environ | {"NMT_RELIABILITY_REPORT": str(report)}
    if slow:
        env["NMT_RELIABILITY_SLOW"] = "1"
    began = datetime.datetime.now(datetime.UTC)
    base = report.parent / "pytest"  # its own: other pytest sessions never prune it
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={base}"]
    args.append("tests/reliability")
    subprocess.run(args, cwd=ROOT, env=env, check=False)
    seconds = (datetime.datetime.now(datetime.UTC) - began).total_seconds()
    return json.loads(report.read_text(encoding="utf-8")), seconds


def cell(text: str, lab_root: str | None) -> str:
    """A table cell: the lab's temp folder shown as LAB, pipes escaped."""
    if lab_root:
        text = text.replace(lab_root, "LAB")
    return text.replace("|", "\\|").replace("\n", " ") or "-"


def table(rows: list[dict[str, Any]], lab_root: str | None) -> str:
    lines = [
        "| probe | bad input | expected | exit | first error line | outcome |",
        "|---|---|---|---|---|---|",
    ]
    for row in rows:
        outcome = f"**{row['status']}** {cell(row['note'], lab_root)}"
        if row["owner"]:
            outcome += f" ({cell(row['owner'], lab_root)})"
        lines.append(
            f"| `{row['name'].removeprefix('test_')}` | {cell(row['tried'], None)} | "
            f"{cell(row['expected'], None)} | {'-' if row['rc'] is None else row['rc']} | "
            f"{cell(row['first_error'], lab_root)} | {outcome} |"
        )
    return "\n".join(lines)


def write_section(path: Path, kind: str, rows: list[dict[str, Any]], lab_root: str | None) -> None:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    start, end = f"<!-- reliability:{kind} -->", f"<!-- /reliability:{kind} -->"
    block = "\n".join(
        [
            start,
            f"## {kind.capitalize()} probes",
            "",
            f"`{command_line('reliability.py')}`, {when}, {machine()}.",
            "",
            table(rows, lab_root),
            end,
        ]
    )
    update_file_section(path, start, end, block, HEADER)


def refresh_header(path: Path) -> None:
    """The page's text before its first table is this script's HEADER."""
    text = path.read_text(encoding="utf-8") if path.is_file() else ""
    tables = text.find("<!-- reliability:")
    path.write_text(HEADER + ("\n" + text[tables:] if tables >= 0 else ""), encoding="utf-8")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="only the quick probes")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nmt-reliability-") as tmp:
        data, seconds = run_probes(not args.quick, Path(tmp) / "report.json")
    rows, lab_root = data["probes"], data["lab_root"]
    refresh_header(args.out)
    write_section(args.out, "quick", [r for r in rows if not r["slow"]], lab_root)
    if not args.quick:
        write_section(args.out, "slow", [r for r in rows if r["slow"]], lab_root)
    failed = [r["name"] for r in rows if r["status"] == "FAIL"]
    print(f"wrote {args.out} ({seconds:.0f} s); failed: {failed or 'none'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
