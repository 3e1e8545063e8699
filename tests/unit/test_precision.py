"""Mixed precision (nmt.training.precision) and torch.compile through the Trainer."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch
from torch import nn

from nmt.config import DeviceChoice, Precision, TrainerConfig
from nmt.data.batching import Batch, collate
from nmt.data.pipeline import TextPipeline
from nmt.training.precision import autocast, build_grad_scaler, cpu_fp16_supported
from nmt.training.trainer import Trainer, TrainingError

CPU = torch.device("cpu")
NO_CPU_FP16 = (
    "CPU autocast has no float16 kernels for RNNs here (oneDNN cannot build the LSTM "
    "primitive); trainer.precision=fp16 is for CUDA, bf16 is the CPU choice"
)


def make_trainer(model: nn.Module, tmp_path: Path, device: torch.device, **cfg: object) -> Trainer:
    options: dict[str, object] = {"device": DeviceChoice.cpu, "test_split": None}
    options.update(cfg)
    return Trainer(
        model,  # type: ignore[arg-type]
        torch.optim.Adam(model.parameters(), lr=1e-3),
        None,
        TrainerConfig(**options),  # type: ignore[arg-type]
        device=device,
        out_dir=tmp_path,
        validate=lambda m: {"val_loss": 1.0},
        checkpoint_data={},
    )


def some_batch(examples: list, pipeline: TextPipeline) -> Batch:
    vocab = pipeline.tgt_vocab
    return collate(
        examples[:16],
        list(range(16)),
        pad_idx=vocab.pad_idx,
        bos_idx=vocab.bos_idx,
        eos_idx=vocab.eos_idx,
    )


def test_bf16_step_on_cpu_is_finite(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: list
) -> None:
    model = make_tiny_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = make_trainer(model, tmp_path, CPU, precision=Precision.bf16)
    assert not trainer.scaler.is_enabled()
    nll = trainer.train_step(some_batch(tiny_examples, tiny_pipeline))
    assert nll.dtype == torch.float32 and math.isfinite(float(nll)) and float(nll) > 0
    for name, value in model.state_dict().items():  # weights stay fp32 and moved
        assert value.dtype == before[name].dtype
    assert any(not torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_bf16_autocast_runs_the_forward_in_bf16(make_tiny_model, tiny_pipeline, tiny_examples):
    batch = some_batch(tiny_examples, tiny_pipeline)
    with autocast(Precision.bf16, CPU):
        logits = make_tiny_model()(batch.src, batch.src_lengths, batch.tgt_in)
    assert logits.dtype == torch.bfloat16


def test_fp16_constructs_a_grad_scaler() -> None:
    assert build_grad_scaler(Precision.fp16, CPU).is_enabled()
    assert not build_grad_scaler(Precision.bf16, CPU).is_enabled()
    assert not build_grad_scaler(Precision.fp32, CPU).is_enabled()


def test_fp16_step(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: list
) -> None:
    device = torch.device("cuda") if torch.cuda.is_available() else CPU
    if device.type == "cpu" and not cpu_fp16_supported():
        with pytest.raises(TrainingError, match="bf16"):  # refused at once, in one line
            make_trainer(make_tiny_model(), tmp_path, CPU, precision=Precision.fp16)
        pytest.skip(NO_CPU_FP16)
    trainer = make_trainer(make_tiny_model().to(device), tmp_path, device, precision=Precision.fp16)
    assert trainer.scaler.is_enabled()
    nll = trainer.train_step(some_batch(tiny_examples, tiny_pipeline).to(device))
    assert math.isfinite(float(nll))
    assert trainer.scaler.state_dict()["scale"] > 0


class Bigram(nn.Module):
    """Logits from the previous target token only: quick to compile."""

    tgt_pad = 0

    def __init__(self, vocab: int = 7) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, 8)
        self.out = nn.Linear(8, vocab)

    def forward(self, src, src_lengths, tgt_in, teacher_forcing=1.0):  # type: ignore[no-untyped-def]
        return self.out(torch.tanh(self.embed(tgt_in)))


@pytest.mark.slow
def test_compile_wraps_the_forward_and_keeps_plain_state_dict_keys(tmp_path: Path) -> None:
    model = Bigram()
    trainer = make_trainer(model, tmp_path, CPU, compile=True)
    assert trainer.net is not model and trainer.model is model
    batch = collate([([3, 4], [3, 5]), ([4], [6])], [0, 1], pad_idx=0, bos_idx=1, eos_idx=2)
    first = float(trainer.train_step(batch))
    second = float(trainer.train_step(batch))
    assert math.isfinite(first) and second < first
    trainer.save()
    saved = torch.load(tmp_path / "checkpoints" / "last.pt", weights_only=True)["model"]
    assert sorted(saved) == sorted(model.state_dict())  # no "_orig_mod." prefixes


def test_auto_precision_is_bf16_only_where_the_device_computes_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nmt.training import precision

    for explicit in (Precision.fp32, Precision.bf16, Precision.fp16):
        assert precision.resolve_precision(explicit, CPU) == explicit
    monkeypatch.setattr(precision, "bf16_native", lambda device: True)
    assert precision.resolve_precision(Precision.auto, CPU) == Precision.bf16
    monkeypatch.setattr(precision, "bf16_native", lambda device: False)
    assert precision.resolve_precision(Precision.auto, CPU) == Precision.fp32
    assert precision.resolve_precision(Precision.auto, torch.device("meta")) == Precision.fp32


def test_auto_precision_trains_under_the_resolved_autocast(
    make_tiny_model, tiny_pipeline, tiny_examples, tmp_path: Path
) -> None:
    from nmt.training.precision import bf16_native

    trainer = make_trainer(make_tiny_model(), tmp_path, CPU, precision=Precision.auto)
    assert trainer.precision == (Precision.bf16 if bf16_native(CPU) else Precision.fp32)
    assert not trainer.scaler.is_enabled()
    nll = trainer.train_step(some_batch(tiny_examples, tiny_pipeline))
    assert math.isfinite(float(nll))
