"""`nmt average`: parameter averaging of checkpoints, and its refusals."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_checkpoint import TINY_BAHDANAU, save_tiny_checkpoint, tiny_bahdanau

from nmt.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from nmt.config import BahdanauConfig
from nmt.data.pipeline import TextPipeline
from nmt.training.averaging import average_checkpoints, last_snapshots


def run_nmt(*args: str) -> subprocess.CompletedProcess[str]:
    script = Path(sys.executable).with_name("nmt")
    cmd = [str(script)] if script.is_file() else [sys.executable, "-m", "nmt"]
    env = os.environ | {"OMP_NUM_THREADS": "1"}
    return subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.fixture
def three(tmp_path: Path, tiny_pipeline: TextPipeline, synthetic_corpus) -> list[Path]:
    """Three checkpoints of one architecture with different weights, with
    training state beside the model (as `nmt train` writes)."""
    paths = []
    for seed in range(3):
        model = tiny_bahdanau(tiny_pipeline, seed=seed)
        path = save_tiny_checkpoint(
            tmp_path / f"c{seed}.pt", model, TINY_BAHDANAU, tiny_pipeline, synthetic_corpus.root
        )
        data = load_checkpoint(path)
        save_checkpoint(data | {"optimizer": {"state": {}}, "trainer_state": {"step": seed}}, path)
        paths.append(path)
    return paths


def add_counter(path: Path, value: list[int]) -> None:
    """Give the checkpoint's model an integer buffer."""
    data = load_checkpoint(path)
    data["model"]["counter"] = torch.tensor(value)
    save_checkpoint(data, path)


def test_average_is_the_mean_of_every_float_tensor(three: list[Path]) -> None:
    for path in three:
        add_counter(path, [5, 6])
    models = [load_checkpoint(p)["model"] for p in three]
    averaged = average_checkpoints(list(three))
    for key, tensor in averaged["model"].items():
        if tensor.is_floating_point():
            expected = torch.stack([m[key] for m in models]).mean(0)
            assert (
                torch.allclose(tensor, expected, atol=1e-7) and tensor.dtype == models[0][key].dtype
            )
        else:
            assert torch.equal(tensor, models[0][key])
    assert not torch.equal(
        averaged["model"]["encoder.embedding.weight"], models[0]["encoder.embedding.weight"]
    )
    assert "optimizer" not in averaged and "trainer_state" not in averaged
    assert averaged["averaged_from"] == [str(p) for p in three]
    assert averaged["src_vocab"] == load_checkpoint(three[0])["src_vocab"]


def test_unequal_integer_buffers_are_refused(three: list[Path]) -> None:
    for path, value in zip(three, ([5, 6], [5, 7], [5, 6])):
        add_counter(path, value)
    with pytest.raises(CheckpointError, match="counter"):
        average_checkpoints(list(three))


def test_other_sizes_or_vocabularies_are_refused(
    three: list[Path], tmp_path: Path, tiny_pipeline: TextPipeline, synthetic_corpus
) -> None:
    wider = BahdanauConfig(emb_dim=8, hidden_dim=12, dropout=0.0)
    torch.manual_seed(0)
    from nmt.models.registry import build_model

    other = save_tiny_checkpoint(
        tmp_path / "wide.pt",
        build_model(wider, tiny_pipeline.vocab_sizes),
        wider,
        tiny_pipeline,
        synthetic_corpus.root,
    )
    with pytest.raises(CheckpointError) as err:
        average_checkpoints([three[0], other])
    message = str(err.value)
    assert "\n" not in message and str(other) in message and "model.hidden_dim" in message
    data = load_checkpoint(three[1])
    data["tgt_vocab"] = {**data["tgt_vocab"], "itos": list(reversed(data["tgt_vocab"]["itos"]))}
    save_checkpoint(data, three[1])
    with pytest.raises(CheckpointError, match="tgt_vocab"):
        average_checkpoints(list(three))


def test_last_snapshots_are_the_newest_n(tmp_path: Path) -> None:
    folder = tmp_path / "run" / "checkpoints"
    for step in (30, 100, 20, 40):
        save_checkpoint({}, folder / f"step_{step:06d}.pt")
    save_checkpoint({}, folder / "best.pt")
    assert [p.name for p in last_snapshots(tmp_path / "run", 2)] == [
        "step_000040.pt",
        "step_000100.pt",
    ]
    with pytest.raises(CheckpointError, match="fewer than last=5"):
        last_snapshots(tmp_path / "run", 5)


def test_cli_averages_a_runs_last_checkpoints_and_translate_loads_it(
    three: list[Path], tmp_path: Path
) -> None:
    run = tmp_path / "run" / "checkpoints"
    run.mkdir(parents=True)
    for step, path in zip((10, 20, 30), three):
        (run / f"step_{step:06d}.pt").write_bytes(path.read_bytes())
    out = tmp_path / "avg.pt"
    proc = run_nmt("average", f"run={tmp_path / 'run'}", "last=2", f"output={out}")
    assert proc.returncode == 0, proc.stderr
    averaged = load_checkpoint(out)
    assert averaged["averaged_from"] == [str(run / "step_000020.pt"), str(run / "step_000030.pt")]
    src = tmp_path / "in.txt"
    src.write_text("s1 s2\ns3\n")
    proc = run_nmt("translate", f"checkpoint={out}", f"input={src}", "output=-")
    assert proc.returncode == 0, proc.stderr
    assert len(proc.stdout.splitlines()) == 2
    proc = run_nmt(
        "evaluate", f"checkpoint={out}", f"src={src}", f"ref={src}", f"output_dir={tmp_path / 'e'}"
    )
    assert proc.returncode == 0, proc.stderr
    assert "bleu" in json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    "args,expected",
    [
        (["output=x.pt"], "checkpoints=[a.pt,b.pt,...] or run=DIR"),
        (["checkpoints=[a.pt]", "output=x.pt"], "at least two"),
        (["run=r", "last=0", "output=x.pt"], "last=0"),
    ],
)
def test_cli_config_errors_are_one_line(args: list[str], expected: str, tmp_path: Path) -> None:
    proc = run_nmt("average", *args)
    assert proc.returncode == 1
    assert expected in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_cli_refuses_mismatched_checkpoints_in_one_line(three: list[Path], tmp_path: Path) -> None:
    data = load_checkpoint(three[1])
    data["config"]["model"]["emb_dim"] = 9
    save_checkpoint(data, three[1])
    proc = run_nmt("average", f"checkpoints=[{three[0]},{three[1]}]", f"output={tmp_path / 'x.pt'}")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "model.emb_dim" in proc.stderr and not (tmp_path / "x.pt").exists()
