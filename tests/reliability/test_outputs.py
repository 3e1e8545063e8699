"""Issue 20's probes of what a user meets: decoding as the recipe chose, outputs
that never clobber a file, and one-line errors for every OSError."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import threading
from pathlib import Path

from reliability_lab import (
    ONE_LINE,
    Lab,
    Outcome,
    environ,
    first_error,
    nmt,
    nmt_command,
    one_line_error,
    probe,
    stderr_text,
)

NEVER_REPLACED = "exit 0; the target is still what it was (written in place or through)"


def _translate(
    lab: Lab, *extra: str, stdin: bytes = b"s1 s2\ns3\n"
) -> subprocess.CompletedProcess[bytes]:
    return nmt(lab, "translate", f"checkpoint={lab.best}", *extra, stdin=stdin)


def _evaluate(lab: Lab, *extra: str) -> dict[str, object]:
    corpus = lab.root / "corpus"
    args = ("evaluate", f"checkpoint={lab.best}", f"src={corpus / 'val.src'}")
    proc = nmt(lab, *args, f"ref={corpus / 'val.tgt'}", f"output_dir={lab.root / 'eval'}", *extra)
    lines = proc.stdout.decode().strip().splitlines()
    return json.loads(lines[-1]) if proc.returncode == 0 and lines else {}


@probe(
    "translate, evaluate a checkpoint trained with decoding=beam beam_size=3, naming no decoding",
    "the recipe's beam search; the report and log say it came from the checkpoint; "
    "decoding.beam_size=2 alone changes that key only",
)
def test_recipe_decoding(lab: Lab) -> Outcome:
    proc = _translate(lab, f"output={lab.root / 'recipe.txt'}")
    logged = "beam search, decoding from the checkpoint" in stderr_text(proc)
    report = _evaluate(lab)
    decoding, source = report.get("decoding") or {}, str(report.get("decoding_source"))
    recipe = decoding.get("strategy") == "beam" and decoding.get("beam_size") == 3  # type: ignore[union-attr]
    changed = _evaluate(lab, "decoding.beam_size=2")
    one_key = (changed.get("decoding") or {}).get("beam_size") == 2 and "command line" in str(  # type: ignore[union-attr]
        changed.get("decoding_source")
    )
    ok = proc.returncode == 0 and logged and recipe and source.startswith("checkpoint") and one_key
    note = (
        f"logged: {logged}; report: {decoding.get('strategy')} ({source}); beam_size=2: {one_key}"  # type: ignore[union-attr]
    )
    return Outcome(ok, proc.returncode, "" if ok else first_error(stderr_text(proc)), note)


def _device(lab: Lab, name: str, minor: int) -> Path | None:
    """A copy of /dev/null (minor 3) or /dev/full (minor 7) in the lab (needs root)."""
    path = lab.root / name
    if not path.exists():
        try:
            os.mknod(path, stat.S_IFCHR | 0o666, os.makedev(1, minor))
        except (PermissionError, AttributeError):
            return None
    return path


def _is_char_device(path: Path) -> bool:
    return stat.S_ISCHR(os.lstat(path).st_mode)


@probe("translate output= a copy of /dev/null (a device node)", NEVER_REPLACED)
def test_output_device(lab: Lab) -> Outcome | None:
    """needs root to make a device node"""
    device = _device(lab, "null_copy", 3)
    if device is None:
        return None
    proc = _translate(lab, f"output={device}")
    ok = proc.returncode == 0 and _is_char_device(device)
    return Outcome(
        ok,
        proc.returncode,
        first_error(stderr_text(proc)) * (not ok),
        f"still a device: {_is_char_device(device)}",
    )


@probe("translate output= a copy of /dev/full (ENOSPC)", ONE_LINE + "; the device stays")
def test_output_full(lab: Lab) -> Outcome | None:
    """needs root to make a device node"""
    device = _device(lab, "full_copy", 7)
    if device is None:
        return None
    outcome = one_line_error(_translate(lab, f"output={device}"), "No space left")
    outcome.passed &= _is_char_device(device)
    outcome.note = f"still a device: {_is_char_device(device)}"
    return outcome


@probe("translate output= a FIFO another process reads", NEVER_REPLACED)
def test_output_fifo(lab: Lab) -> Outcome:
    fifo = lab.root / "out.fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    proc = _translate(lab, f"output={fifo}")
    reader.join(timeout=30)
    if reader.is_alive():  # old code never opened the FIFO: unblock the reader
        with open(fifo, "wb"):
            pass
    lines = got[0].count(b"\n") if got else 0
    ok = proc.returncode == 0 and stat.S_ISFIFO(os.lstat(fifo).st_mode) and lines == 2
    return Outcome(
        ok,
        proc.returncode,
        first_error(stderr_text(proc)) * (not ok),
        f"reader got {lines} lines; still a FIFO: {stat.S_ISFIFO(os.lstat(fifo).st_mode)}",
    )


@probe(
    "translate output= a symlink to a file", "exit 0; the link stays, the file it names is written"
)
def test_output_symlink(lab: Lab) -> Outcome:
    real, link = lab.root / "linked.txt", lab.root / "link.txt"
    real.write_text("old\n", encoding="utf-8")
    link.unlink(missing_ok=True)
    link.symlink_to(real.name)
    proc = _translate(lab, f"output={link}")
    written = real.read_text(encoding="utf-8").count("\n")
    ok = proc.returncode == 0 and link.is_symlink() and written == 2
    return Outcome(
        ok,
        proc.returncode,
        first_error(stderr_text(proc)) * (not ok),
        f"still a link: {link.is_symlink()}; target lines {written}",
    )


@probe(
    "translate output=NEW with umask 022; average output=NEW",
    "files of mode 0644, as the umask says",
)
def test_output_umask(lab: Lab) -> Outcome:
    out, avg = lab.root / "umask.txt", lab.root / "umask_avg.pt"
    old = os.umask(0o022)
    try:
        proc = _translate(lab, f"output={out}")
        nmt(lab, "average", f"checkpoints=[{lab.best},{lab.best}]", f"output={avg}")
    finally:
        os.umask(old)
    modes = [oct(stat.S_IMODE(p.stat().st_mode)) if p.exists() else None for p in (out, avg)]
    return Outcome(modes == ["0o644", "0o644"], proc.returncode, note=f"modes {modes}")


@probe("translate input=FILE output=FILE (the same file)", ONE_LINE + "; the input unchanged")
def test_translate_output_is_input(lab: Lab) -> Outcome:
    src = lab.root / "same.txt"
    src.write_text("s1 s2\n", encoding="utf-8")
    outcome = one_line_error(_translate(lab, f"input={src}", f"output={src}"), "input")
    outcome.passed &= src.read_text(encoding="utf-8") == "s1 s2\n"
    return outcome


def _copies(lab: Lab, folder: str) -> tuple[Path, Path]:
    """A copy of the lab's run (its checkpoints) and a second checkpoint file."""
    run = lab.root / folder
    shutil.copytree(lab.run_dir, run, dirs_exist_ok=True)
    other = lab.root / f"{folder}_other.pt"
    shutil.copyfile(lab.best, other)
    return run, other


@probe("average checkpoints=[a.pt,b.pt] output=a.pt", ONE_LINE + "; a.pt unchanged")
def test_average_output_is_input(lab: Lab) -> Outcome:
    _, other = _copies(lab, "avg_in")
    before = other.read_bytes()
    proc = nmt(lab, "average", f"checkpoints=[{other},{lab.best}]", f"output={other}")
    outcome = one_line_error(proc, "input")
    outcome.passed &= other.read_bytes() == before
    return outcome


@probe(
    "average of two other files output= a run's checkpoints/last.pt",
    ONE_LINE + " offering overwrite=true; last.pt (the resume state) kept",
)
def test_average_over_last_pt(lab: Lab) -> Outcome:
    run, other = _copies(lab, "avg_last")
    last = run / "checkpoints" / "last.pt"
    (run / "checkpoints" / "best.pt").unlink()
    shutil.copyfile(lab.best, last)  # its own file, not a link of an input
    before = last.read_bytes()
    proc = nmt(lab, "average", f"checkpoints=[{other},{lab.best}]", f"output={last}")
    outcome = one_line_error(proc, "overwrite=true")
    outcome.passed &= last.read_bytes() == before
    return outcome


@probe(
    "two `nmt evaluate` runs (best.pt, then a copy other.pt) into the default output dir",
    "two reports side by side, each named for its checkpoint",
)
def test_evaluate_reports_kept(lab: Lab) -> Outcome:
    run, _ = _copies(lab, "eval_twice")
    folder = run / "checkpoints"
    shutil.copyfile(folder / "best.pt", folder / "other.pt")
    corpus = lab.root / "corpus"
    files = (f"src={corpus / 'val.src'}", f"ref={corpus / 'val.tgt'}")
    for name in ("best.pt", "other.pt"):
        proc = nmt(lab, "evaluate", f"checkpoint={folder / name}", *files)
    reports = sorted(p.name for p in folder.glob("*report.json"))
    return Outcome(len(reports) == 2, proc.returncode, note=f"reports {reports}")


@probe(
    "`nmt translate input=- output=- | head -1`: the reader goes after line 1, more lines come",
    "ends quietly (no traceback, no error line), as coreutils do",
)
def test_broken_pipe(lab: Lab) -> Outcome:
    args = [*nmt_command(), "translate", f"checkpoint={lab.best}", "decoding=greedy"]
    proc = subprocess.Popen(
        args,
        cwd=lab.root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environ(),
    )
    assert proc.stdin and proc.stdout and proc.stderr
    proc.stdin.write(b"s1 s2 s3\n")
    proc.stdin.flush()
    proc.stdout.readline()
    proc.stdout.close()  # as head -1 does
    try:
        proc.stdin.write(b"s1 s2 s3\n" * 100)
        proc.stdin.close()
    except BrokenPipeError:
        pass
    rc = proc.wait(timeout=120)
    err = proc.stderr.read().decode(errors="replace")
    ok = "Traceback" not in err and "rror" not in err and "Exception" not in err
    return Outcome(ok, rc, first_error(err) * (not ok), f"stderr {len(err.strip())} chars")


@probe("translate with stdin closed (`<&-`)", ONE_LINE)
def test_closed_stdin(lab: Lab) -> Outcome:
    command = " ".join([*nmt_command(), "translate", f"checkpoint={lab.best}", "<&-"])
    proc = subprocess.run(["sh", "-c", command], cwd=lab.root, capture_output=True, check=False)
    return one_line_error(proc, "stdin")


@probe("train experiment=null", ONE_LINE)
def test_experiment_null(lab: Lab) -> Outcome:
    return one_line_error(
        nmt(lab, *lab.train_args(lab.root / "exp_null", "experiment=null")), "experiment"
    )


@probe(
    "translate attention_plots= a path under a file",
    ONE_LINE + ", before any decoding; no output written",
)
def test_plots_dir_checked_first(lab: Lab) -> Outcome:
    (lab.root / "plain_file").write_text("x\n", encoding="utf-8")
    out = lab.root / "plots_out.txt"
    proc = _translate(lab, f"output={out}", f"attention_plots={lab.root / 'plain_file' / 'plots'}")
    outcome = one_line_error(proc, "attention_plots")
    outcome.passed &= not out.exists()
    return outcome


@probe("train hydra.run.dir= a file", ONE_LINE)
def test_run_dir_is_file(lab: Lab) -> Outcome:
    path = lab.root / "run_dir_file"
    path.write_text("x\n", encoding="utf-8")
    return one_line_error(nmt(lab, *lab.train_args(path)), path.name)


@probe("evaluate output_dir= a file", ONE_LINE)
def test_evaluate_output_dir_is_file(lab: Lab) -> Outcome:
    path = lab.root / "eval_dir_file"
    path.write_text("x\n", encoding="utf-8")
    corpus = lab.root / "corpus"
    args = (
        "evaluate",
        f"checkpoint={lab.best}",
        f"src={corpus / 'val.src'}",
        f"ref={corpus / 'val.tgt'}",
    )
    return one_line_error(nmt(lab, *args, f"output_dir={path}"), path.name)
