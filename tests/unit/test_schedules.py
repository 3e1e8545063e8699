"""Teacher-forcing schedules (Bengio et al. 2015) and their use by the trainer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from same_batches import SameBatches
from torch import nn

from nmt.config import ConfigError, DeviceChoice, TeacherForcingSchedule, TrainerConfig
from nmt.data.batching import collate
from nmt.training.schedules import scheduled_ratio, teacher_forcing_at
from nmt.training.trainer import Trainer

S = TeacherForcingSchedule


def test_constant_ignores_the_step() -> None:
    assert scheduled_ratio(S.constant, 0, start=0.5, k=None) == 0.5
    assert scheduled_ratio(S.constant, 10**6, start=0.5, k=None) == 0.5


def test_linear_decreases_by_k_per_step_down_to_the_floor() -> None:
    assert scheduled_ratio(S.linear, 0, start=1.0, k=0.01) == 1.0
    assert scheduled_ratio(S.linear, 30, start=1.0, k=0.01) == pytest.approx(0.7)
    assert scheduled_ratio(S.linear, 500, start=1.0, k=0.01, minimum=0.25) == 0.25


def test_exponential_is_start_times_k_to_the_step() -> None:
    assert scheduled_ratio(S.exponential, 0, start=0.8, k=0.99) == pytest.approx(0.8)
    assert scheduled_ratio(S.exponential, 100, start=0.8, k=0.99) == pytest.approx(0.8 * 0.99**100)


def test_inverse_sigmoid_matches_the_formula_and_never_overflows() -> None:
    k = 50.0
    for step in (0, 10, 200, 1000):
        expected = k / (k + math.exp(step / k))
        assert scheduled_ratio(S.inverse_sigmoid, step, start=1.0, k=k) == pytest.approx(expected)
    assert scheduled_ratio(S.inverse_sigmoid, 10**9, start=1.0, k=k, minimum=0.1) == 0.1


@pytest.mark.parametrize(
    ("schedule", "k"), [(S.linear, 1e-3), (S.exponential, 0.995), (S.inverse_sigmoid, 100.0)]
)
def test_decays_never_increase_and_stay_in_range(
    schedule: TeacherForcingSchedule, k: float
) -> None:
    ratios = [
        scheduled_ratio(schedule, i, start=0.9, k=k, minimum=0.05) for i in range(0, 5000, 50)
    ]
    assert all(a >= b for a, b in zip(ratios, ratios[1:]))
    assert all(0.05 <= r <= 0.9 for r in ratios)
    assert ratios[-1] < ratios[0]


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"teacher_forcing_schedule": S.linear}, "trainer.teacher_forcing_k"),
        (
            {"teacher_forcing_schedule": S.exponential, "teacher_forcing_k": 1.5},
            "teacher_forcing_k",
        ),
        (
            {"teacher_forcing_schedule": S.inverse_sigmoid, "teacher_forcing_k": 0.5},
            "teacher_forcing_k",
        ),
        ({"teacher_forcing": 0.5, "teacher_forcing_min": 0.6}, "trainer.teacher_forcing_min"),
    ],
)
def test_bad_schedule_settings_name_the_key(options: dict[str, object], key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        TrainerConfig(**options)  # type: ignore[arg-type]


class RecordingModel(nn.Module):
    """Logits from one parameter; remembers the teacher-forcing ratio it got."""

    tgt_pad = 0

    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(5))
        self.ratios: list[float] = []

    def forward(self, src, src_lengths, tgt_in, teacher_forcing=1.0):  # type: ignore[no-untyped-def]
        self.ratios.append(teacher_forcing)
        return self.bias.expand(tgt_in.size(0), tgt_in.size(1), 5)


def test_trainer_uses_the_ratio_of_each_step_and_logs_the_last(tmp_path: Path) -> None:
    cfg = TrainerConfig(
        max_epochs=2,
        device=DeviceChoice.cpu,
        teacher_forcing=1.0,
        teacher_forcing_schedule=S.linear,
        teacher_forcing_k=0.1,
        teacher_forcing_min=0.2,
        log_every_steps=1000,
        test_split=None,
    )
    model = RecordingModel()
    trainer = Trainer(
        model,  # type: ignore[arg-type]
        torch.optim.SGD(model.parameters(), lr=0.1),
        None,
        cfg,
        device=torch.device("cpu"),
        out_dir=tmp_path,
        validate=lambda m: {"val_loss": 1.0},
        checkpoint_data={},
    )
    batch = collate([([3, 4], [3])], [0], pad_idx=0, bos_idx=1, eos_idx=2)
    trainer.fit(SameBatches([batch] * 5))
    expected = [teacher_forcing_at(cfg, i) for i in range(10)]
    assert model.ratios == pytest.approx(expected)
    assert model.ratios[-1] == pytest.approx(0.2)
    epochs = [
        json.loads(line)
        for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
        if json.loads(line)["type"] == "epoch"
    ]
    assert [e["teacher_forcing"] for e in epochs] == pytest.approx([expected[4], expected[9]])
