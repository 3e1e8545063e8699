"""`nmt translate` and `nmt evaluate` end to end: line alignment whatever the
input holds, n-best and TSV output, attention plots, checkpoint errors."""

from __future__ import annotations

import os
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tiny_checkpoint import (
    TINY_BAHDANAU,
    TINY_SUTSKEVER,
    save_tiny_checkpoint,
    tiny_bahdanau,
)

from nmt.commands import evaluate as evaluate_command
from nmt.commands import translate as translate_command
from nmt.config import (
    DecodingConfig,
    DecodingStrategy,
    EvaluateConfig,
    OutputFormat,
    TranslateConfig,
    to_plain,
)
from nmt.data.pipeline import TextPipeline
from nmt.translation import translate_nbest

CPU = torch.device("cpu")
LONG = " ".join(f"s{i % 12}" for i in range(45))  # over the pipeline's 20 tokens
# Input lines as bytes: plain, empty, blank, over-long, not UTF-8.
POOL = [b"s1 s2 s3", b"s4 s5", b"s6", b"s7 s8 s9 s10 s11", b"", b"   ", b"\t", LONG.encode()]
POOL += [b"s3 \xff\xfe s4", b"\xc3("]


def nmt_command() -> list[str]:
    script = Path(sys.executable).with_name("nmt")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "nmt"]


def run_nmt(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [*nmt_command(), *args], input=stdin, capture_output=True, env=env, timeout=120
    )


@pytest.fixture
def sutskever_checkpoint(
    tmp_path: Path, trained_tiny_model, tiny_pipeline: TextPipeline, synthetic_corpus
) -> Path:
    return save_tiny_checkpoint(
        tmp_path / "sutskever.pt",
        trained_tiny_model,
        TINY_SUTSKEVER,
        tiny_pipeline,
        synthetic_corpus.root,
    )


@pytest.fixture
def bahdanau_checkpoint(tmp_path: Path, tiny_pipeline: TextPipeline, synthetic_corpus) -> Path:
    model = tiny_bahdanau(tiny_pipeline)
    return save_tiny_checkpoint(
        tmp_path / "bahdanau.pt", model, TINY_BAHDANAU, tiny_pipeline, synthetic_corpus.root
    )


def messy_input() -> bytes:
    lines = [b"s1 s2 s3", b"", b"   \r", LONG.encode(), b"s4 \xff s5\r", b"s6 s7", b"\t"]
    return b"\n".join(lines) + b"\nlast s1"  # no newline at the end


# ------------------------------------------------------------- through the CLI


def test_cli_keeps_lines_of_a_messy_file(sutskever_checkpoint: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(messy_input())
    target = tmp_path / "out" / "plain.txt"
    result = run_nmt(
        "translate", f"checkpoint={sutskever_checkpoint}", f"input={source}", f"output={target}"
    )
    assert result.returncode == 0, result.stderr.decode()
    lines = target.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and len(lines) - 1 == 8
    assert [i for i, line in enumerate(lines[:-1], 1) if not line] == [2, 3, 7]
    stderr = result.stderr.decode()
    assert stderr.count("were cut") == 1 and "line 4" in stderr
    assert stderr.count("not UTF-8") == 1
    assert "Traceback" not in stderr


def test_cli_writes_n_best_tsv(sutskever_checkpoint: Path, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_bytes(messy_input())
    target = tmp_path / "nbest.tsv"
    result = run_nmt(
        "translate",
        f"checkpoint={sutskever_checkpoint}",
        f"input={source}",
        f"output={target}",
        "decoding=beam",
        "decoding.n_best=3",
        "output_format=tsv",
    )
    assert result.returncode == 0, result.stderr.decode()
    rows = [line.split("\t") for line in target.read_text(encoding="utf-8").splitlines()]
    assert all(len(row) == 4 for row in rows)
    assert [(int(r[0]), int(r[1])) for r in rows] == [
        (n, k) for n in range(1, 9) for k in (1, 2, 3)
    ]
    for n in range(8):
        group = rows[3 * n : 3 * n + 3]
        scores = [float(r[2]) for r in group]
        assert scores == sorted(scores, reverse=True)
        texts = [r[3] for r in group]
        assert (n + 1 in (2, 3, 7)) == (texts == ["", "", ""])
        if n + 1 not in (2, 3, 7):
            assert len(set(texts)) == 3


def test_cli_stdin_to_stdout_with_attention_plots(
    bahdanau_checkpoint: Path, tmp_path: Path
) -> None:
    plots = tmp_path / "plots"
    result = run_nmt(
        "translate",
        f"checkpoint={bahdanau_checkpoint}",
        f"attention_plots={plots}",
        "attention_plots_max=3",
        "decoding.max_len=6",
        stdin=b"s1 s2\n\ns3 s4 s5\ns6\n",
    )
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode().split("\n")
    assert len(out) == 5 and out[1] == "" and out[-1] == "" and all(out[i] for i in (0, 2, 3))
    assert sorted(p.name for p in plots.iterdir()) == ["line00001.png", "line00003.png"]
    for path in plots.iterdir():
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
        assert min(struct.unpack(">II", data[16:24])) > 0
    assert "translate:" not in result.stderr.decode()  # no progress bar for a pipe


@pytest.mark.parametrize("kind", ["missing", "garbage", "foreign", "no-match"])
def test_bad_checkpoints_get_one_line_errors(
    kind: str, tmp_path: Path, sutskever_checkpoint: Path
) -> None:
    path = tmp_path / f"{kind}.pt"
    if kind == "garbage":
        path.write_bytes(b"\x00not a checkpoint" * 50)
    elif kind == "foreign":  # another toolkit's file: tensors, no nmt marker
        torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 3}, path)
    elif kind == "no-match":  # an nmt checkpoint whose weights do not fit its config
        data = torch.load(sutskever_checkpoint, weights_only=True)
        data["model"] = {"w": torch.zeros(2)}
        torch.save(data, path)
    result = run_nmt("translate", f"checkpoint={path}", stdin=b"s1 s2\n")
    stderr = [line for line in result.stderr.decode().splitlines() if line.strip()]
    assert result.returncode == 1
    assert len(stderr) == 1 and stderr[0].startswith("nmt translate: error: "), stderr
    assert str(path.name) in stderr[0]
    assert result.stdout == b""


# ------------------------------------------------------------------ in-process


def translate_file(checkpoint: Path, raw: bytes, **options: object) -> list[str]:
    with tempfile.TemporaryDirectory() as tmp:
        source, target = Path(tmp) / "in.txt", Path(tmp) / "out.txt"
        source.write_bytes(raw)
        cfg = TranslateConfig(
            checkpoint=str(checkpoint), input=str(source), output=str(target), **options
        )  # type: ignore[arg-type]
        translate_command.run(cfg)
        return target.read_text(encoding="utf-8").split("\n")[:-1]


def alone(model, pipeline: TextPipeline, raw: bytes, decoding: DecodingConfig):
    text = raw.decode("utf-8", errors="replace")
    return translate_nbest(model, [text], pipeline, decoding, CPU)[0]


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    picks=st.lists(st.integers(0, len(POOL) - 1), max_size=10),
    crlf=st.lists(st.booleans(), min_size=10, max_size=10),
    final_newline=st.booleans(),
    tsv=st.booleans(),
)
def test_every_input_line_gives_its_own_output_lines(
    picks: list[int],
    crlf: list[bool],
    final_newline: bool,
    tsv: bool,
    sutskever_checkpoint: Path,
    trained_tiny_model,
    tiny_pipeline: TextPipeline,
) -> None:
    lines = [POOL[i] for i in picks]
    raw = b"".join(line + (b"\r\n" if crlf[n] else b"\n") for n, line in enumerate(lines))
    # A last line without a newline only exists if it holds something: an empty
    # last line needs its newline (b"" is a file of no lines).
    if lines and lines[-1] and not final_newline:
        raw = raw[: -2 if crlf[len(lines) - 1] else -1]
    if tsv:
        decoding = DecodingConfig(strategy=DecodingStrategy.beam, beam_size=3, n_best=2)
        fmt = OutputFormat.tsv
    else:
        decoding, fmt = DecodingConfig(), OutputFormat.plain
    out = translate_file(sutskever_checkpoint, raw, decoding=decoding, output_format=fmt)
    assert len(out) == len(lines) * decoding.n_best
    for n, line in enumerate(lines):
        expected = alone(trained_tiny_model, tiny_pipeline, line, decoding)
        got = out[n * decoding.n_best : (n + 1) * decoding.n_best]
        if not tsv:
            assert got == [" ".join(t.text.split()) for t in expected]
            continue
        for rank, (row, t) in enumerate(zip(got, expected, strict=True), 1):
            number, k, score, text = row.split("\t")
            assert (int(number), int(k), text) == (n + 1, rank, " ".join(t.text.split()))
            assert float(score) == pytest.approx(t.score, abs=2e-4)


def test_plain_n_best_gives_n_lines_per_input(sutskever_checkpoint: Path) -> None:
    decoding = DecodingConfig(strategy=DecodingStrategy.sample, n_best=3, seed=5)
    out = translate_file(sutskever_checkpoint, b"s1 s2\n\ns3\n", decoding=decoding)
    assert len(out) == 9 and out[3:6] == ["", "", ""]


def test_plots_of_a_model_without_attention_warn(
    sutskever_checkpoint: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = translate_file(sutskever_checkpoint, b"s1 s2\ns3\n", attention_plots=str(tmp_path / "p"))
    assert len(out) == 2
    assert not (tmp_path / "p").exists()
    assert "no attention" in caplog.text


def test_evaluate_reports_every_decoding_key(
    sutskever_checkpoint: Path, synthetic_corpus, tmp_path: Path
) -> None:
    decoding = DecodingConfig(strategy=DecodingStrategy.beam, beam_size=3, length_penalty=0.6)
    cfg = EvaluateConfig(
        checkpoint=str(sutskever_checkpoint),
        src=str(synthetic_corpus.src("test")),
        ref=str(synthetic_corpus.tgt("test")),
        output_dir=str(tmp_path),
        decoding=decoding,
    )
    report = evaluate_command.run(cfg)
    assert report["decoding"] == to_plain(decoding)
    assert report["decoding"]["strategy"] == "beam" and report["decoding"]["beam_size"] == 3
    assert report["bleu"] > 0
