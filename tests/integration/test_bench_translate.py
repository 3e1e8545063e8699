"""Smoke test of scripts/bench_translate.py on a tiny checkpoint."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from tiny_checkpoint import TINY_SUTSKEVER, save_tiny_checkpoint

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_translate.py"


def load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_translate", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_bench_writes_its_table(
    tmp_path: Path, trained_tiny_model, tiny_pipeline, synthetic_corpus
) -> None:
    checkpoint = save_tiny_checkpoint(
        tmp_path / "tiny.pt",
        trained_tiny_model,
        TINY_SUTSKEVER,
        tiny_pipeline,
        synthetic_corpus.root,
    )
    out = tmp_path / "docs" / "performance.md"
    out.parent.mkdir()
    out.write_text("# Performance\n\nSomeone else's section.\n", encoding="utf-8")
    args = [
        sys.executable, str(SCRIPT),
        "--checkpoint", str(checkpoint),
        "--src", str(synthetic_corpus.src("test")),
        "--ref", str(synthetic_corpus.tgt("test")),
        "--limit", "20", "--device", "cpu", "--threads", "1", "--out", str(out),
    ]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Performance\n\nSomeone else's section.\n")
    assert text.count("<!-- bench_translate:start -->") == 1
    assert "20 sentences" in result.stdout + text and "torch " in text and "--limit 20" in text
    rows = re.findall(
        r"^\| (greedy|beam)[^|]*\| ([\d.]+) \| ([\d.]+) \| [\d.]+ \| ([\d.]+)x \|$", text, re.M
    )
    assert [r[0] for r in rows] == ["greedy", "greedy", "beam"]
    assert rows[0][3] == "1.0"  # the one-at-a-time loop is the reference
    assert rows[0][1] == rows[1][1]  # both greedy runs give the same translations
    assert all(float(r[2]) > 0 for r in rows)


def test_update_section_replaces_its_own_entry_only() -> None:
    bench = load_script()
    first = bench.update_section("# Perf\n\nintro\n", "ckpt-a | cpu", "### A\nold\n")
    assert first.startswith("# Perf\n\nintro\n\n<!-- bench_translate:start -->")
    text = first + "\n<!-- other:start -->\nother script\n<!-- other:end -->\n"
    text = bench.update_section(text, "ckpt-b | cpu", "### B\n")
    text = bench.update_section(text, "ckpt-a | cpu", "### A\nnew\n")
    assert "old" not in text and "new" in text and "### B" in text
    assert text.index("### A") < text.index("### B")  # entries keep their place
    assert text.count("<!-- bench_translate:entry") == 2
    assert text.endswith("<!-- other:start -->\nother script\n<!-- other:end -->\n")
    assert bench.update_section("", "k--x", "e").startswith("# Performance\n")
    assert "k--x" not in bench.update_section("", "k--x", "e")  # keeps the comment valid
