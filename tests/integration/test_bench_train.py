"""Smoke test of scripts/bench_train.py on tiny synthetic batches."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "bench_train.py"
TINY = ["model.emb_dim=8", "model.hidden_dim=16"]


def test_bench_train_prints_speeds_and_writes_its_row(tmp_path: Path) -> None:
    recipe = "bahdanau_seed"
    out = tmp_path / "performance.md"
    out.write_text(
        "# Performance\n\n<!-- other:start -->\nSomeone else's section.\n<!-- other:end -->\n",
        encoding="utf-8",
    )
    args = [
        sys.executable, str(SCRIPT), "--recipe", recipe, "--synthetic",
        "--synthetic-vocab", "40", "--batch-size", "4", "--steps", "2", "--threads", "1",
        "--out", str(out), *TINY,
    ]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    for _ in range(2):  # the second run replaces its own row
        result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
        assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert re.search(r"^reference: [\d.]+ tokens/s", result.stdout, re.M)
    assert re.search(r"^nmt: [\d.]+ tokens/s", result.stdout, re.M)
    speedup = re.fullmatch(r"speedup=([\d.]+)", lines[-1])
    assert speedup and float(speedup.group(1)) > 0
    params = re.search(r"^params reference=(\d+) nmt=(\d+)", result.stdout, re.M)
    assert params and params.group(1) == params.group(2)  # same architecture and sizes
    text = out.read_text(encoding="utf-8")
    assert "Someone else's section." in text
    assert text.count("<!-- bench_train:start -->") == 1
    rows = [line for line in text.splitlines() if line.startswith(f"| {recipe} (synthetic) |")]
    assert len(rows) == 1 and "| cpu | 0.5 |" in rows[0] and "--steps 2" in rows[0]


def test_reference_models_have_nmt_parameter_counts() -> None:
    import bench_train
    from tutorial_reference import build_reference

    from nmt.models.registry import build_model

    sizes = bench_train.VocabSizes(src=31, tgt=29, src_pad=1, tgt_pad=1)
    for recipe in ("bahdanau_seed", "sutskever_seed", "cho_seed", "luong_seed"):
        args = bench_train.parse_args(["--recipe", recipe, "--synthetic", *TINY])
        cfg = bench_train.compose_config(args).model
        ref, ours = build_reference(cfg, sizes), build_model(cfg, sizes)
        # The tutorials' attention holds W_a and U_a in one matrix over [s; h_j].
        assert bench_train.count_params(ref) == bench_train.count_params(ours), recipe


def test_tutorial_batches_are_shuffled_unsorted_and_cover_the_epoch() -> None:
    from bench_train import tutorial_index_batches

    batches = tutorial_index_batches(1000, 128, seed=3)
    assert [len(b) for b in batches] == [128] * 7 + [104]  # the last one short
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1000)) and flat != sorted(flat)
    assert batches == tutorial_index_batches(1000, 128, seed=3)
    assert batches != tutorial_index_batches(1000, 128, seed=4)


def test_tutorial_batching_writes_the_epoch_table(tmp_path: Path) -> None:
    out = tmp_path / "performance.md"
    out.write_text("# Performance\n\n<!-- bench_train:start -->\nsteps\n<!-- bench_train:end -->\n")
    args = [
        sys.executable, str(SCRIPT), "--recipe", "sutskever_seed", "--synthetic",
        "--synthetic-vocab", "40", "--batch-size", "4", "--steps", "3", "--threads", "1",
        "--batching", "tutorial", "--out", str(out), *TINY,
    ]  # fmt: skip
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    per_side = re.findall(
        r"^(reference|nmt): ([\d.]+) s/step x (\d+) batches/epoch = ([\d.]+) s/epoch",
        result.stdout,
        re.M,
    )
    assert [side for side, *_ in per_side] == ["reference", "nmt"]
    for _, step, batches, epoch in per_side:
        assert int(batches) == 5  # 4 * (2 warm-up + 3 timed) pairs in batches of 4
        assert abs(float(step) * int(batches) - float(epoch)) < 0.1 + 0.01 * float(epoch)
    text = out.read_text(encoding="utf-8")
    assert "<!-- bench_train:start -->\nsteps\n<!-- bench_train:end -->" in text
    assert text.count("<!-- bench_train_epoch:start -->") == 1 and "extrapolated" in text
    rows = [line for line in text.splitlines() if line.startswith("| sutskever_seed (synthetic) |")]
    assert len(rows) == 1 and "| 20 | 5 |" in rows[0] and "--batching tutorial" in rows[0]
