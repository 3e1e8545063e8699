"""Parameter averaging: one model whose weights are the mean of several
checkpoints' weights (Junczys-Dowmunt et al., 2016; Vaswani et al., 2017).

For checkpoints ``c_1 .. c_N`` of one run (or of runs with one architecture,
size, tokenizers and vocabularies) every floating-point tensor ``w`` of the
model becomes ``w = (1/N) * sum_i w_i`` (summed in float64, stored in the
tensor's own dtype).  Integer and boolean buffers cannot be averaged; they
must be equal in every checkpoint.  The result is an ordinary checkpoint
without the training state (optimizer, scheduler, generators): ``nmt
evaluate`` and ``nmt translate`` load it; a training run cannot resume from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from nmt.checkpoint import CheckpointError, load_checkpoint, resolve_checkpoint
from nmt.training.checkpointing import CheckpointFiles

# what a training checkpoint holds besides the model, its config and its text
# processing: left out of an average
TRAINING_STATE = (
    "optimizer",
    "scheduler",
    "scaler",
    "trainer_state",
    "val_metrics",
    "rng",
    "rng_per_rank",
    "format",
    "version",
)
# must be equal in every averaged checkpoint (beside the model's tensor names and shapes)
MUST_MATCH = ("src_tokenizer", "tgt_tokenizer", "src_vocab", "tgt_vocab")


def last_snapshots(run_dir: str | Path, count: int) -> list[Path]:
    """The newest ``count`` ``checkpoints/step_NNNNNN.pt`` of a run, oldest first."""
    files = CheckpointFiles(Path(run_dir) / "checkpoints")
    found = [path for _, path in files.snapshots()]
    if len(found) < count:
        raise CheckpointError(
            f"{files.directory} holds {len(found)} step checkpoints, fewer than last={count} "
            "(trainer.keep_last sets how many a run keeps)"
        )
    return found[-count:]


def _differences(a: dict[str, Any], b: dict[str, Any], prefix: str) -> list[str]:
    keys = sorted(set(a) | set(b))
    return [f"{prefix}{k} ({a.get(k)!r} vs {b.get(k)!r})" for k in keys if a.get(k) != b.get(k)]


def check_compatible(
    first: dict[str, Any], other: dict[str, Any], names: tuple[Path, Path]
) -> None:
    """Refuse ``other`` unless it has ``first``'s architecture, sizes and vocabularies."""
    diffs = _differences(first["config"]["model"], other["config"]["model"], "model.")
    diffs += [key for key in MUST_MATCH if first.get(key) != other.get(key)]
    shapes = {k: tuple(v.shape) for k, v in first["model"].items()}
    if not diffs and shapes != {k: tuple(v.shape) for k, v in other["model"].items()}:
        diffs.append("the model's tensor names or shapes")
    if diffs:
        raise CheckpointError(
            f"{names[1]} cannot be averaged with {names[0]}: they differ in "
            f"{'; '.join(diffs)[:300]} (average checkpoints of one architecture, size and "
            "vocabulary only)"
        )


def _add(total: dict[str, torch.Tensor], model: dict[str, torch.Tensor], path: Path) -> None:
    """Add ``model``'s float tensors into ``total``; check its other tensors are equal."""
    for key, tensor in model.items():
        if tensor.is_floating_point():
            total[key] += tensor.to(torch.float64)
        elif not torch.equal(total[key], tensor):
            raise CheckpointError(
                f"{path}: the integer buffer {key} differs from the first checkpoint's; "
                "it cannot be averaged"
            )


def average_checkpoints(paths: list[str | Path]) -> dict[str, Any]:
    """The payload of a checkpoint whose model is the mean of ``paths``' models
    (loaded one at a time); the rest is the first checkpoint's, less the
    training state, plus ``averaged_from`` (the files, in order)."""
    if not paths:
        raise CheckpointError("no checkpoints to average")
    files = [resolve_checkpoint(p) for p in paths]
    first = load_checkpoint(files[0])
    total = {
        k: v.to(torch.float64) if v.is_floating_point() else v.clone()
        for k, v in first["model"].items()
    }
    for path in files[1:]:
        data = load_checkpoint(path)
        check_compatible(first, data, (files[0], path))
        _add(total, data["model"], path)
        del data
    model = {
        k: (total[k] / len(files)).to(v.dtype) if v.is_floating_point() else total[k]
        for k, v in first["model"].items()
    }
    kept = {k: v for k, v in first.items() if k not in TRAINING_STATE}
    return kept | {"model": model, "averaged_from": [str(p) for p in files]}
