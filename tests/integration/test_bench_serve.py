"""Smoke test of scripts/bench_serve.py on a tiny checkpoint (no timing assertions)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from tiny_checkpoint import TINY_SUTSKEVER, save_tiny_checkpoint

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_serve.py"


def test_bench_serve_writes_its_section(
    tmp_path: Path, trained_tiny_model, tiny_pipeline, synthetic_corpus
) -> None:
    checkpoint = save_tiny_checkpoint(
        tmp_path / "tiny.pt",
        trained_tiny_model,
        TINY_SUTSKEVER,
        tiny_pipeline,
        synthetic_corpus.root,
    )
    out = tmp_path / "performance.md"
    out.write_text(
        "# Performance\n\n<!-- bench_translate:start -->\nkept\n<!-- bench_translate:end -->\n"
    )
    args = [
        sys.executable, str(SCRIPT),
        "--checkpoint", str(checkpoint), "--input", str(synthetic_corpus.src("test")),
        "--clients", "3", "--requests", "12", "--lines-per-request", "2",
        "--device", "cpu", "--threads", "1", "--out", str(out),
    ]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    text = out.read_text(encoding="utf-8")
    assert "<!-- bench_translate:start -->\nkept\n<!-- bench_translate:end -->" in text
    assert text.count("<!-- bench_serve:start -->") == 1 and "--requests 12" in text
    served = re.search(r"^\| `nmt serve`, 3 clients, 2 line\(s\) per request \| (.*)$", text, re.M)
    assert served, text
    requests_s, sentences_s, p50, p95, p99, errors = (c.strip() for c in served[1].split("|")[:6])
    assert errors == "0" and float(requests_s) > 0 and float(sentences_s) > 0
    assert float(p50) <= float(p95) <= float(p99)
    assert "12 requests (a fixed count), 24 sentences" in text
    assert re.search(r"^\| offline, one batched call \(batch \d+\) \| \| [\d.]+ \|", text, re.M)
    assert re.search(r"Served / offline sentences/s: \*\*[\d.]+\*\*", text)
