"""`nmt translate` edge cases from the hostile-tester issue and streaming:
unwritable outputs, invisible-character lines, an unbounded beam, stdin
translated line by line as it arrives, and ensembles on the command line."""

from __future__ import annotations

import os
import select
import subprocess
from pathlib import Path

import pytest
import torch
from test_translate_cli import nmt_command, run_nmt
from tiny_checkpoint import TINY_SUTSKEVER, save_tiny_checkpoint
from train_runs import environ, tiny_run_args

from nmt.checkpoint import save_checkpoint
from nmt.commands import evaluate as evaluate_command
from nmt.commands.serve import make_engine
from nmt.config import DecodingConfig, EvaluateConfig, ServeConfig
from nmt.data.pipeline import TextPipeline


@pytest.fixture
def checkpoint(tmp_path: Path, trained_tiny_model, tiny_pipeline: TextPipeline, synthetic_corpus):
    return save_tiny_checkpoint(
        tmp_path / "tiny.pt",
        trained_tiny_model,
        TINY_SUTSKEVER,
        tiny_pipeline,
        synthetic_corpus.root,
    )


def one_error_line(result: subprocess.CompletedProcess[bytes]) -> str:
    lines = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert result.returncode == 1 and len(lines) == 1, lines
    assert lines[0].startswith("nmt translate: error: ")
    return lines[0]


def temp_files(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*.tmp")]


@pytest.mark.parametrize("kind", ["parent-is-file", "is-directory"])
def test_unwritable_output_is_refused_before_work(
    kind: str, checkpoint: Path, tmp_path: Path
) -> None:
    source = tmp_path / "in.txt"
    source.write_text("s1 s2\n", encoding="utf-8")
    blocker = tmp_path / "file"
    blocker.write_text("x", encoding="utf-8")
    target = blocker / "out.txt" if kind == "parent-is-file" else tmp_path
    result = run_nmt("translate", f"checkpoint={checkpoint}", f"input={source}", f"output={target}")
    error = one_error_line(result)
    assert str(target) in error
    assert temp_files(tmp_path) == []


def test_a_failed_translation_leaves_no_temp_file(checkpoint: Path, tmp_path: Path) -> None:
    target = tmp_path / "out.txt"
    missing = tmp_path / "missing.txt"
    result = run_nmt(
        "translate", f"checkpoint={checkpoint}", f"input={missing}", f"output={target}"
    )
    assert "missing.txt" in one_error_line(result)
    assert temp_files(tmp_path) == [] and not target.exists()


def test_junk_only_lines_translate_to_empty_lines(checkpoint: Path) -> None:
    junk = ["\x00\x00", "\u200b", "\ufeff", "\ufffd\ufffd", "\u200b \ufeff\x00"]
    raw = ("s1 s2\n" + "\n".join(junk) + "\ns3\u200b s4\n").encode()
    result = run_nmt("translate", f"checkpoint={checkpoint}", stdin=raw)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode().split("\n")
    assert len(out) == len(junk) + 3 and out[-1] == ""
    assert out[1 : 1 + len(junk)] == [""] * len(junk)
    clean = run_nmt("translate", f"checkpoint={checkpoint}", stdin=b"s3 s4\n")
    assert out[-2] == clean.stdout.decode().strip()  # the zero-width space is gone


def test_beam_size_beyond_the_limit_fails_fast(checkpoint: Path) -> None:
    result = run_nmt(
        "translate",
        f"checkpoint={checkpoint}",
        "decoding=beam",
        "decoding.beam_size=20000",
        stdin=b"s1 s2\n",
    )
    assert "decoding.max_beam_size" in one_error_line(result)


def read_line(handle, seconds: float) -> bytes:
    """One line from a pipe, or b"" when none comes within ``seconds``."""
    ready, _, _ = select.select([handle], [], [], seconds)
    return handle.readline() if ready else b""


def test_stdin_lines_are_answered_as_they_arrive(checkpoint: Path) -> None:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    process = subprocess.Popen(
        [*nmt_command(), "translate", f"checkpoint={checkpoint}", "input=-", "output=-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    )
    assert process.stdin and process.stdout
    try:
        process.stdin.write(b"s1 s2 s3\n")
        process.stdin.flush()
        first = read_line(process.stdout, 90)  # before the second line is written
        assert first.endswith(b"\n"), process.stderr.read() if process.stderr else ""
        process.stdin.write(b"s4 s5\n")
        process.stdin.close()
        rest = process.stdout.read()
        assert process.wait(timeout=60) == 0
    finally:
        process.kill()
    batched = run_nmt("translate", f"checkpoint={checkpoint}", stdin=b"s1 s2 s3\ns4 s5\n")
    assert first + rest == batched.stdout and rest.count(b"\n") == 1


def test_translate_with_an_ensemble_and_mismatched_vocabularies(
    checkpoint: Path, tmp_path: Path
) -> None:
    twice = run_nmt("translate", f"checkpoint=[{checkpoint},{checkpoint}]", stdin=b"s1 s2\ns3\n")
    alone = run_nmt("translate", f"checkpoint={checkpoint}", stdin=b"s1 s2\ns3\n")
    assert twice.returncode == 0, twice.stderr.decode()
    assert twice.stdout == alone.stdout
    data = torch.load(checkpoint, weights_only=True)
    data["tgt_vocab"]["itos"] = [*data["tgt_vocab"]["itos"][:-1], "other"]
    other = tmp_path / "other.pt"
    save_checkpoint(data, other)
    result = run_nmt("translate", f"checkpoint=[{checkpoint},{other}]", stdin=b"s1\n")
    error = one_error_line(result)
    assert "other.pt" in error and "tgt vocab" in error


@pytest.mark.parametrize("split", ["train", "val"])
def test_training_on_an_empty_file_stops_before_it_starts(
    split: str, synthetic_corpus, tmp_path: Path
) -> None:
    empty = tmp_path / f"empty.{split}.src"
    blank = tmp_path / f"blank.{split}.tgt"
    empty.write_text("", encoding="utf-8")
    blank.write_text("", encoding="utf-8")
    args = [o for o in tiny_run_args(synthetic_corpus) if not o.startswith(f"data.{split}_")]
    args += [f"data.{split}_src={empty}", f"data.{split}_tgt={blank}"]
    run = tmp_path / "run"
    result = subprocess.run(
        [*nmt_command(), "train", *args, f"hydra.run.dir={run}"],
        capture_output=True,
        env=environ(),
        timeout=120,
    )
    lines = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert result.returncode == 1 and lines[-1].startswith("nmt train: error: "), lines
    assert str(empty) in lines[-1] and "empty" in lines[-1]
    assert "Traceback" not in result.stderr.decode()
    assert not (run / "checkpoints" / "best.pt").exists()


def test_evaluate_and_serve_take_an_ensemble(
    checkpoint: Path, synthetic_corpus, tmp_path: Path
) -> None:
    files = {"src": str(synthetic_corpus.src("test")), "ref": str(synthetic_corpus.tgt("test"))}
    alone = evaluate_command.run(
        EvaluateConfig(checkpoint=str(checkpoint), output_dir=str(tmp_path / "a"), **files)  # type: ignore[arg-type]
    )
    pair = [str(checkpoint), str(checkpoint)]
    both = evaluate_command.run(
        EvaluateConfig(checkpoint=pair, output_dir=str(tmp_path / "b"), **files)  # type: ignore[arg-type]
    )
    assert both["checkpoint"] == pair and alone["checkpoint"] == str(checkpoint)
    assert both["bleu"] == alone["bleu"] and both["ppl"] == pytest.approx(alone["ppl"], rel=1e-5)
    engine = make_engine(ServeConfig(checkpoint=pair, device="cpu"))  # type: ignore[arg-type]
    # an ensemble is described as one: its members with their own facts, none of
    # them passed off as the ensemble's, and no absolute path
    members = engine.info["ensemble"]
    assert engine.info["checkpoint"] is None and engine.info["step"] is None
    assert [m["checkpoint"] for m in members] == [members[0]["checkpoint"]] * 2
    assert members[0]["checkpoint"].endswith("tiny.pt")
    assert not members[0]["checkpoint"].startswith("/")
    served = engine.translate(["s1 s2 s3"], DecodingConfig(), False)[0][0]
    single = make_engine(ServeConfig(checkpoint=str(checkpoint), device="cpu"))  # type: ignore[arg-type]
    assert served.text == single.translate(["s1 s2 s3"], DecodingConfig(), False)[0][0].text
    assert single.info["ensemble"] is None
