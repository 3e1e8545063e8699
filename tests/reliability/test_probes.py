"""The bad inputs of issue 15 tried against the installed `nmt`, one probe each.

A probe takes the lab (see reliability_lab) and returns an Outcome: the exit
code, the first error line, and PASS when `nmt` did what the issue expects
(one clear error line, the line count kept, an exact resume, ...).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import struct
import subprocess
import time
import zipfile
from pathlib import Path
from typing import Any

from reliability_lab import (
    ONE_LINE,
    Lab,
    Outcome,
    first_error,
    nmt,
    one_line_error,
    probe,
    start,
    stderr_text,
)

ODD_LINES = [
    b"s1 s2 s3",
    b"\x00\x00\x00",
    b"s4 \xff\xfe s5",
    "\u200b".encode(),
    "\ufeff".encode(),
    b"",
    b"   \t ",
    b" ".join([b"s1 s2 s3 s4"] * 2500),
    b"s6 s7",
]
JUNK_ONLY = (1, 3, 4)  # ODD_LINES that hold nothing but NUL or format characters


def _odd_translation(lab: Lab) -> tuple[subprocess.CompletedProcess[bytes], list[str]]:
    """One `nmt translate` of ODD_LINES, shared by the probes that read it."""
    if "odd" not in lab.memo:
        src = lab.root / "odd.txt"
        src.write_bytes(b"\n".join(ODD_LINES) + b"\n")
        out = lab.root / "odd.out"
        proc = nmt(lab, "translate", f"checkpoint={lab.best}", f"input={src}", f"output={out}")
        lines = out.read_text("utf-8", errors="replace").split("\n")[:-1] if out.exists() else []
        lab.memo["odd"] = (proc, lines)
    return lab.memo["odd"]


@probe(
    "translate: NUL-only, invalid UTF-8, U+200B-only, U+FEFF-only, empty, blank and a "
    "10,000-word line",
    "exit 0, one output line per input line",
)
def test_odd_bytes_line_count(lab: Lab) -> Outcome:
    proc, lines = _odd_translation(lab)
    ok = proc.returncode == 0 and len(lines) == len(ODD_LINES)
    note = f"{len(lines)} output lines for {len(ODD_LINES)} input lines"
    return Outcome(ok, proc.returncode, first_error(stderr_text(proc)) if not ok else "", note)


@probe("the same file: the NUL / U+200B / U+FEFF-only lines", "each comes back as an empty line")
def test_junk_lines_empty(lab: Lab) -> Outcome:
    proc, lines = _odd_translation(lab)
    got = [lines[i] if i < len(lines) else None for i in JUNK_ONLY]
    return Outcome(all(g == "" for g in got), proc.returncode, note=f"outputs {got!r}")


@probe("translate decoding.length_penalty=nan", ONE_LINE)
def test_nonfinite_length_penalty(lab: Lab) -> Outcome:
    args = ("translate", f"checkpoint={lab.best}", "decoding.length_penalty=nan")
    return one_line_error(nmt(lab, *args, stdin=b"s1 s2\n"), "decoding.length_penalty")


@probe("train optimizer.lr=inf", ONE_LINE)
def test_nonfinite_lr(lab: Lab) -> Outcome:
    proc = nmt(lab, *lab.train_args(lab.root / "lr_inf", "optimizer.lr=inf"))
    return one_line_error(proc, "optimizer.lr")


@probe("train trainer.clip_grad_norm=nan", ONE_LINE)
def test_nonfinite_clip(lab: Lab) -> Outcome:
    proc = nmt(lab, *lab.train_args(lab.root / "clip_nan", "trainer.clip_grad_norm=nan"))
    return one_line_error(proc, "trainer.clip_grad_norm")


@probe("translate threads=0", ONE_LINE)
def test_threads_invalid(lab: Lab) -> Outcome:
    proc = nmt(lab, "translate", f"checkpoint={lab.best}", "threads=0", stdin=b"s1\n")
    return one_line_error(proc, "threads=0")


@probe("train threads=1 with OMP_NUM_THREADS=2", "1 thread used, recorded in summary.json")
def test_threads_recorded(lab: Lab) -> Outcome:
    """threads=1 beat OMP_NUM_THREADS=2 in the set-up run, and summary.json says so."""
    summary = json.loads((lab.run_dir / "summary.json").read_text(encoding="utf-8"))
    ok = summary.get("cpu_threads") == 1
    return Outcome(ok, 0, note=f"summary.json cpu_threads={summary.get('cpu_threads')}")


@probe("train with stderr not a terminal", "plain progress lines, no carriage return")
def test_progress_plain(lab: Lab) -> Outcome:
    """The set-up run's stderr went to a pipe: plain progress lines, no '\\r'."""
    text = stderr_text(lab.memo["setup"])
    plain = sum(line.startswith("epoch 1 batch ") for line in text.splitlines())
    ok = "\r" not in text and plain > 0
    return Outcome(ok, 0, note=f"{text.count(chr(13))} carriage returns, {plain} progress lines")


class _Evil:
    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, ("touch PWNED",))


def _malicious(lab: Lab) -> subprocess.CompletedProcess[bytes]:
    if "evil" not in lab.memo:
        import torch

        path = lab.root / "evil.pt"
        torch.save({"model": _Evil()}, path)  # protocol 2: a GLOBAL posix.system
        args = ("translate", f"checkpoint={path}")
        lab.memo["evil"] = nmt(lab, *args, stdin=b"s1\n")
    return lab.memo["evil"]


@probe("a checkpoint whose pickle calls os.system", ONE_LINE + "; the command never runs")
def test_malicious_refused(lab: Lab) -> Outcome:
    outcome = one_line_error(_malicious(lab))
    outcome.passed &= not (lab.root / "PWNED").exists()
    return outcome


@probe(
    "the same checkpoint", "the error names the refused global, no advice to turn weights_only off"
)
def test_malicious_message(lab: Lab) -> Outcome:
    """The refusal names the blocked global and never advises weights_only=False."""
    outcome = one_line_error(_malicious(lab), "system")
    outcome.passed &= "weights_only" not in stderr_text(_malicious(lab))
    return outcome


@probe("best.pt cut to half its size", ONE_LINE)
def test_truncated_checkpoint(lab: Lab) -> Outcome:
    path = lab.root / "truncated.pt"
    data = lab.best.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return one_line_error(nmt(lab, "translate", f"checkpoint={path}", stdin=b"s1\n"), path.name)


def _largest_member_offset(path: Path) -> tuple[int, int]:
    """(offset of the data, size) of the biggest entry of a zip: a tensor's bytes."""
    with zipfile.ZipFile(path) as archive:
        info = max(archive.infolist(), key=lambda i: i.file_size)
    with path.open("rb") as handle:
        handle.seek(info.header_offset + 26)
        name_len, extra_len = struct.unpack("<HH", handle.read(4))
    return info.header_offset + 30 + name_len + extra_len, info.file_size


@probe("best.pt with 1 KB inside a tensor overwritten", ONE_LINE)
def test_damaged_checkpoint(lab: Lab) -> Outcome:
    path = lab.root / "damaged.pt"
    shutil.copyfile(lab.best, path)
    offset, size = _largest_member_offset(path)
    with path.open("r+b") as handle:
        handle.seek(offset + max(0, size // 2 - 512))
        handle.write(os.urandom(min(1024, size)))
    return one_line_error(nmt(lab, "translate", f"checkpoint={path}", stdin=b"s1\n"), path.name)


def _output_probe(lab: Lab, output: Path) -> Outcome:
    args = ("translate", f"checkpoint={lab.best}", f"output={output}")
    outcome = one_line_error(nmt(lab, *args, stdin=b"s1 s2\n"))
    leftovers = list(output.parent.glob(".*.tmp")) + list(output.parent.parent.glob(".*.tmp"))
    outcome.passed &= not leftovers
    outcome.note = f"{len(leftovers)} temp files left"
    return outcome


@probe("translate output=FILE/out.txt", ONE_LINE + "; no temp file left")
def test_output_parent_is_file(lab: Lab) -> Outcome:
    (lab.root / "a_file").write_text("x\n", encoding="utf-8")
    return _output_probe(lab, lab.root / "a_file" / "out.txt")


@probe("translate output=DIR", ONE_LINE + "; no temp file left")
def test_output_is_directory(lab: Lab) -> Outcome:
    (lab.root / "a_dir").mkdir(exist_ok=True)
    return _output_probe(lab, lab.root / "a_dir")


def _empty(lab: Lab, name: str) -> Path:
    path = lab.root / name
    path.write_text("\n  \n", encoding="utf-8")
    return path


@probe("train data=files with a blank-only training file", ONE_LINE)
def test_empty_train_file(lab: Lab) -> Outcome:
    empty = _empty(lab, "empty_train.txt")
    args = lab.train_args(lab.root / "empty_train", train_src=empty, train_tgt=empty)
    return one_line_error(nmt(lab, *args), empty.name)


@probe("train data=files with a blank-only validation file", ONE_LINE)
def test_empty_val_file(lab: Lab) -> Outcome:
    empty = _empty(lab, "empty_val.txt")
    extra = ("trainer.max_epochs=1",)
    args = lab.train_args(lab.root / "empty_val", *extra, val_src=empty, val_tgt=empty)
    return one_line_error(nmt(lab, *args), empty.name)


@probe("nmt data on a Multi30k copy with val.de.gz changed", ONE_LINE)
def test_checksum_mismatch(lab: Lab) -> Outcome | None:
    """needs $NMT_DATA_DIR with the Multi30k files (a changed copy of val.de.gz is tried)"""
    shared = os.environ.get("NMT_DATA_DIR")
    if not shared or not (Path(shared) / "val.de.gz").is_file():
        return None
    fake = lab.root / "fake_multi30k"
    fake.mkdir(exist_ok=True)
    shutil.copyfile(Path(shared) / "val.en.gz", fake / "val.en.gz")
    (fake / "val.de.gz").write_bytes((Path(shared) / "val.de.gz").read_bytes() + b"\0")
    args = ("data", f"data.root={fake}", "data.download=false", "stats=false", "splits=[val]")
    return one_line_error(nmt(lab, *args), "sha256 mismatch")


@probe("translate decoding.beam_size=20000", ONE_LINE, slow=True)
def test_beam_20000(lab: Lab) -> Outcome:
    args = ("translate", f"checkpoint={lab.best}", "decoding=beam", "decoding.beam_size=20000")
    return one_line_error(nmt(lab, *args, stdin=b"s1 s2\ns3\n", timeout=120), "beam_size")


@probe(
    "train into a run dir that holds a finished run",
    ONE_LINE + " offering trainer.resume_from",
    slow=True,
)
def test_run_dir_holds_run(lab: Lab) -> Outcome:
    copy = lab.root / "run_copy"
    shutil.copytree(lab.run_dir, copy, dirs_exist_ok=True)
    proc = nmt(lab, *lab.train_args(copy, "trainer.max_epochs=1"), timeout=300)
    return one_line_error(proc, "resume_from")


@probe(
    "a second train into the same run dir 4 s later",
    "one finishes, the other is refused with one line",
    slow=True,
)
def test_two_trainings_one_dir(lab: Lab) -> Outcome:
    shared = lab.root / "shared_run"
    args = lab.train_args(shared, "trainer.max_epochs=3")
    first = start(lab, *args, log=lab.root / "first.log")
    time.sleep(4)
    second = start(lab, *args, log=lab.root / "second.log")
    codes = sorted([first.wait(timeout=400), second.wait(timeout=400)])
    logs = [
        (lab.root / f).read_text("utf-8", errors="replace") for f in ("first.log", "second.log")
    ]
    line = next((first_error(t) for t in logs if "error" in first_error(t)), "")
    ok = codes[0] == 0 and codes[1] != 0 and "Traceback" not in "".join(logs)
    return Outcome(ok, codes[1], line, note=f"exit codes {codes}")


TIMING = {"epoch_time_s", "tokens_per_s", "elapsed_s", "rss_mb"}  # measured, not computed


def _epochs(run_dir: Path) -> list[dict[str, Any]]:
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines() if x]
    return [
        {k: v for k, v in r.items() if k not in TIMING} for r in records if r["type"] == "epoch"
    ]


def _reference(lab: Lab, extra: tuple[str, ...]) -> list[dict[str, Any]]:
    """The epochs of the same run, never interrupted."""
    if "reference" not in lab.memo:
        nmt(lab, *lab.train_args(lab.root / "reference", *extra), timeout=400)
        lab.memo["reference"] = _epochs(lab.root / "reference")
    return lab.memo["reference"]


def _kill_and_resume(lab: Lab, signum: int) -> Outcome:
    run_dir = lab.root / f"killed_{signum}"
    extra = ("trainer.max_epochs=3", "trainer.save_every_steps=3", "trainer.batch_size=16")
    args = lab.train_args(run_dir, *extra)
    proc = start(lab, *args, log=lab.root / f"killed_{signum}.log")
    last = run_dir / "checkpoints" / "last.pt"
    deadline = time.monotonic() + 200
    while not last.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(1.0)
    proc.send_signal(signum)
    killed_rc = proc.wait(timeout=120)
    resumed = nmt(lab, *args, f"trainer.resume_from={run_dir}", timeout=400)
    same = resumed.returncode == 0 and _epochs(run_dir) == _reference(lab, extra)
    note = f"killed run exit {killed_rc}; resumed run matches an uninterrupted one: {same}"
    return Outcome(same, resumed.returncode, first_error(stderr_text(resumed)) * (not same), note)


@probe(
    "SIGKILL mid-run, then trainer.resume_from=RUN",
    "the resumed run's epochs equal an uninterrupted run's",
    slow=True,
)
def test_sigkill_resume(lab: Lab) -> Outcome:
    return _kill_and_resume(lab, signal.SIGKILL)


@probe(
    "SIGTERM mid-run, then trainer.resume_from=RUN",
    "the resumed run's epochs equal an uninterrupted run's",
    slow=True,
)
def test_sigterm_resume(lab: Lab) -> Outcome:
    return _kill_and_resume(lab, signal.SIGTERM)
