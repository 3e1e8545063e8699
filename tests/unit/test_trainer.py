"""Tests for nmt.training.trainer on the tiny synthetic task (CPU, seconds)."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import torch

from nmt.checkpoint import load_checkpoint
from nmt.config import (
    BestMetric,
    DeviceChoice,
    OptimizerConfig,
    OptimizerName,
    TrainerConfig,
)
from nmt.data.batching import Batch, BucketBatchSampler, EpochBatches, collate
from nmt.data.pipeline import TextPipeline
from nmt.evaluation import teacher_forced_nll
from nmt.models.seq2seq import Seq2Seq
from nmt.training.optim import build_optimizer
from nmt.training.sources import BatchSource
from nmt.training.trainer import Trainer, TrainingError, TrainingInterrupted

CPU = torch.device("cpu")
BATCH_SIZE = 32
Examples = list[tuple[list[int], list[int]]]


def trainer_config(**overrides: object) -> TrainerConfig:
    options: dict[str, object] = {
        "max_epochs": 2,
        "batch_size": BATCH_SIZE,
        "clip_grad_norm": 1.0,
        "device": DeviceChoice.cpu,
        "seed": 0,
        "best_metric": BestMetric.loss,
        "bleu_every_epoch": False,
        "log_every_steps": 4,
        "test_split": None,
    }
    options.update(overrides)
    return TrainerConfig(**options)  # type: ignore[arg-type]


def batch_source(examples: Examples, pipeline: TextPipeline, seed: int = 0) -> EpochBatches:
    """The batches of each epoch as `nmt train` builds them (one process)."""
    sampler = BucketBatchSampler([len(s) for s, _ in examples], BATCH_SIZE, shuffle=True, seed=seed)
    vocab = pipeline.tgt_vocab
    return EpochBatches(
        examples, sampler, pad_idx=vocab.pad_idx, bos_idx=vocab.bos_idx, eos_idx=vocab.eos_idx
    )


class Tapped:
    """``source``, calling ``tap(epoch, position)`` before it hands out each batch."""

    def __init__(self, source: BatchSource, tap: Callable[[int, int], None]) -> None:
        self.source = source
        self.tap = tap

    def num_batches(self, epoch: int) -> int:
        return self.source.num_batches(epoch)

    def batches(self, epoch: int, start: int) -> Iterator[Batch]:
        for position, batch in enumerate(self.source.batches(epoch, start), start):
            self.tap(epoch, position)
            yield batch


def scripted_validator(values: list[float]) -> Callable[[Seq2Seq], dict[str, float]]:
    """A validator that reports the given val losses, one per epoch."""
    remaining = list(values)

    def validate(model: Seq2Seq) -> dict[str, float]:
        loss = remaining.pop(0)
        return {"val_loss": loss, "val_ppl": math.exp(loss)}

    return validate


def make_trainer(
    model: Seq2Seq,
    out_dir: Path,
    *,
    validate: Callable[[Seq2Seq], dict[str, float]] | None = None,
    lr: float = 0.01,
    optimizer: OptimizerName = OptimizerName.adam,
    **cfg: object,
) -> Trainer:
    opt = build_optimizer(model, OptimizerConfig(name=optimizer, lr=lr))
    return Trainer(
        model,
        opt,
        None,
        trainer_config(**cfg),
        device=CPU,
        out_dir=out_dir,
        validate=validate or scripted_validator([5.0 - i for i in range(10)]),
        checkpoint_data={"config": {"label": "unit-test"}, "extra": [1, 2, 3]},
    )


def first_batch(examples: Examples, pipeline: TextPipeline, count: int = 8) -> Batch:
    vocab = pipeline.tgt_vocab
    return collate(
        examples[:count],
        list(range(count)),
        pad_idx=vocab.pad_idx,
        bos_idx=vocab.bos_idx,
        eos_idx=vocab.eos_idx,
    )


def with_extra_padding(batch: Batch, pad_idx: int, extra: int = 5) -> Batch:
    """The same batch with ``extra`` more padding columns on both sides."""

    def widen(t: torch.Tensor) -> torch.Tensor:
        return torch.cat([t, torch.full((t.size(0), extra), pad_idx, dtype=t.dtype)], dim=1)

    return dataclasses.replace(batch, src=widen(batch.src), tgt=widen(batch.tgt))


def grad_norm(model: torch.nn.Module) -> float:
    grads = [p.grad.detach().flatten() for p in model.parameters() if p.grad is not None]
    return float(torch.cat(grads).norm())


def read_metrics(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


# ------------------------------------------------------------------------ tests


def test_loss_decreases(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    model = make_tiny_model()
    before, tokens = teacher_forced_nll(model, tiny_examples, tiny_pipeline, CPU)

    def validate(m: Seq2Seq) -> dict[str, float]:
        nll, n = teacher_forced_nll(m, tiny_examples[:50], tiny_pipeline, CPU)
        return {"val_loss": nll / n, "val_ppl": math.exp(nll / n)}

    trainer = make_trainer(model, tmp_path, validate=validate, max_epochs=4)
    trainer.fit(batch_source(tiny_examples, tiny_pipeline))
    after, _ = teacher_forced_nll(model, tiny_examples, tiny_pipeline, CPU)
    assert after / tokens < 0.8 * (before / tokens)
    epochs = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["type"] == "epoch"]
    assert [r["epoch"] for r in epochs] == [1, 2, 3, 4]
    assert epochs[-1]["train_loss"] < epochs[0]["train_loss"]
    assert epochs[-1]["val_loss"] < epochs[0]["val_loss"]


def test_padding_does_not_change_loss_or_update(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    batch = first_batch(tiny_examples, tiny_pipeline)
    padded = with_extra_padding(batch, tiny_pipeline.tgt_vocab.pad_idx)
    assert padded.tgt.size(1) == batch.tgt.size(1) + 5 and padded.ntokens == batch.ntokens

    model_a = make_tiny_model()
    model_b = copy.deepcopy(model_a)
    trainer_a = make_trainer(model_a, tmp_path / "a", optimizer=OptimizerName.sgd, lr=0.5)
    trainer_b = make_trainer(model_b, tmp_path / "b", optimizer=OptimizerName.sgd, lr=0.5)
    nll_a = trainer_a.train_step(batch)
    nll_b = trainer_b.train_step(padded)
    assert float(nll_a) > 0
    assert float(nll_b) == pytest.approx(float(nll_a), rel=1e-5)
    for (name, pa), pb in zip(model_a.named_parameters(), model_b.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6), name


def test_checkpoints_and_metrics_written(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    # val loss gets worse in epoch 2: best.pt must stay at epoch 1, last.pt at 2
    trainer = make_trainer(
        make_tiny_model(), tmp_path, validate=scripted_validator([2.0, 3.0]), max_epochs=2
    )
    batches = batch_source(tiny_examples, tiny_pipeline)
    steps = batches.num_batches(1)
    state = trainer.fit(batches)
    assert (state.epoch, state.step, state.best_epoch) == (2, 2 * steps, 1)

    ckpt = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpt.iterdir()) == ["best.pt", "last.pt"]
    last = load_checkpoint(ckpt / "last.pt")
    best = load_checkpoint(ckpt / "best.pt")
    expected_keys = {"model", "optimizer", "scheduler", "trainer_state", "val_metrics", "rng"}
    assert expected_keys | {"config", "extra"} <= set(last)
    assert last["config"] == {"label": "unit-test"} and last["extra"] == [1, 2, 3]
    assert last["trainer_state"]["epoch"] == 2 and last["val_metrics"]["val_loss"] == 3.0
    assert best["trainer_state"]["epoch"] == 1 and best["val_metrics"]["val_loss"] == 2.0
    assert last["trainer_state"]["step"] == 2 * steps
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(last["model"][key], value)

    records = read_metrics(tmp_path / "metrics.jsonl")
    epochs = [r for r in records if r["type"] == "epoch"]
    train = [r for r in records if r["type"] == "train"]
    assert {r["type"] for r in records} == {"epoch", "train"}
    assert [r["epoch"] for r in epochs] == [1, 2]
    for record in epochs:
        assert {
            "step",
            "train_loss",
            "train_ppl",
            "val_loss",
            "val_ppl",
            "lr",
            "epoch_time_s",
            "tokens_per_s",
        } <= set(record)
        assert record["train_ppl"] == pytest.approx(math.exp(record["train_loss"]), rel=1e-6)
    assert [r["step"] for r in train] == list(range(4, 2 * steps + 1, 4))
    for record in train:
        assert {"loss", "ppl", "lr", "tokens_per_s"} <= set(record)
        assert math.isfinite(record["loss"])


def test_best_by_bleu_prefers_higher(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    bleus = [10.0, 30.0, 20.0]

    def validate(m: Seq2Seq) -> dict[str, float]:
        return {"val_loss": 1.0, "val_ppl": math.e, "val_bleu": bleus.pop(0)}

    trainer = make_trainer(
        make_tiny_model(),
        tmp_path,
        validate=validate,
        max_epochs=3,
        best_metric=BestMetric.bleu,
    )
    state = trainer.fit(batch_source(tiny_examples, tiny_pipeline))
    assert state.best_epoch == 2
    best = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert best["val_metrics"]["val_bleu"] == 30.0


def test_clip_grad_norm_bounds_the_gradient(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    batch = first_batch(tiny_examples, tiny_pipeline)
    free = make_trainer(make_tiny_model(), tmp_path / "free", clip_grad_norm=None, lr=1e-9)
    free.train_step(batch)
    unclipped = grad_norm(free.model)
    limit = unclipped / 10  # well below the natural norm, so clipping must act
    clipped = make_trainer(make_tiny_model(), tmp_path / "clip", clip_grad_norm=limit, lr=1e-9)
    clipped.train_step(batch)
    assert grad_norm(clipped.model) == pytest.approx(limit, rel=1e-3)
    assert grad_norm(clipped.model) <= limit * (1 + 1e-4)


def test_max_steps_stops_mid_epoch(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    batches = batch_source(tiny_examples, tiny_pipeline)
    assert batches.num_batches(1) > 3
    trainer = make_trainer(make_tiny_model(), tmp_path, max_epochs=5, max_steps=3)
    state = trainer.fit(batches)
    assert state.step == 3
    assert state.epoch == 1  # the cut-short epoch is validated and saved, then it stops
    epochs = [r for r in read_metrics(tmp_path / "metrics.jsonl") if r["type"] == "epoch"]
    assert [r["step"] for r in epochs] == [3]
    assert load_checkpoint(tmp_path / "checkpoints" / "last.pt")["trainer_state"]["step"] == 3


@pytest.mark.parametrize("log_every_steps", [1, 1000], ids=["window-check", "epoch-check"])
def test_non_finite_loss_raises(
    tmp_path: Path,
    make_tiny_model,
    tiny_pipeline: TextPipeline,
    tiny_examples: Examples,
    log_every_steps: int,
) -> None:
    model = make_tiny_model()
    with torch.no_grad():
        model.decoder.output.bias[5] = float("nan")
    trainer = make_trainer(model, tmp_path, log_every_steps=log_every_steps)
    with pytest.raises(TrainingError, match="not finite|nan"):
        trainer.fit(batch_source(tiny_examples, tiny_pipeline))
    assert not (tmp_path / "checkpoints" / "last.pt").exists()
    assert not (tmp_path / "checkpoints" / "best.pt").exists()


def test_resume_continues_and_matches_an_uninterrupted_run(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    straight = make_trainer(make_tiny_model(), tmp_path / "straight", max_epochs=3)
    straight.fit(batch_source(tiny_examples, tiny_pipeline))

    first = make_trainer(make_tiny_model(), tmp_path / "run", max_epochs=2)
    first.fit(batch_source(tiny_examples, tiny_pipeline))
    steps_per_epoch = batch_source(tiny_examples, tiny_pipeline).num_batches(1)

    # a fresh process: a different initialisation, then resume from the run dir
    second = make_trainer(
        make_tiny_model(seed=99), tmp_path / "run", max_epochs=3, validate=scripted_validator([2.0])
    )
    second.resume(tmp_path / "run")
    assert (second.state.epoch, second.state.step) == (2, 2 * steps_per_epoch)
    for key, value in first.model.state_dict().items():
        assert torch.equal(second.model.state_dict()[key], value), key
    state = second.fit(batch_source(tiny_examples, tiny_pipeline))
    assert (state.epoch, state.step) == (3, 3 * steps_per_epoch)

    epochs = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["type"] == "epoch"]
    assert [(r["epoch"], r["step"]) for r in epochs] == [
        (e, e * steps_per_epoch) for e in (1, 2, 3)
    ]
    # model, optimizer state and batch order all carried over
    for key, value in straight.model.state_dict().items():
        assert torch.allclose(second.model.state_dict()[key], value, atol=1e-6), key


def test_resume_from_a_checkpoint_file(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    first = make_trainer(make_tiny_model(), tmp_path / "run", max_epochs=1)
    first.fit(batch_source(tiny_examples, tiny_pipeline))
    again = make_trainer(make_tiny_model(seed=5), tmp_path / "run2", max_epochs=1)
    again.resume(tmp_path / "run" / "checkpoints" / "last.pt")
    assert again.state.epoch == 1
    state = again.fit(batch_source(tiny_examples, tiny_pipeline))
    assert state.epoch == 1  # max_epochs already reached: nothing more to do
    assert not (tmp_path / "run2" / "checkpoints").exists()


# ------------------------------------------------ mid-epoch resume, signals, stopping


class Crash(Exception):
    """Stands in for a process killed mid-epoch."""


def crashing(source: BatchSource, epoch: int, after: int) -> Tapped:
    """``source`` that dies after ``after`` batches of ``epoch``."""

    def tap(e: int, i: int) -> None:
        if e == epoch and i == after:
            raise Crash

    return Tapped(source, tap)


RNG_HEAVY = {"dropout": 0.3}  # dropout and teacher-forcing coins draw from torch's RNG


def test_resume_mid_epoch_matches_an_uninterrupted_run(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    def validate(m: Seq2Seq) -> dict[str, float]:
        nll, n = teacher_forced_nll(m, tiny_examples[:40], tiny_pipeline, CPU)
        return {"val_loss": nll / n, "val_ppl": math.exp(nll / n)}

    options = {
        "max_epochs": 2,
        "teacher_forcing": 0.5,
        "save_every_steps": 3,
        "validate": validate,
    }
    straight = make_trainer(make_tiny_model(**RNG_HEAVY), tmp_path / "straight", **options)
    straight.fit(batch_source(tiny_examples, tiny_pipeline))

    batches = batch_source(tiny_examples, tiny_pipeline)
    first = make_trainer(make_tiny_model(**RNG_HEAVY), tmp_path / "run", **options)
    assert batches.num_batches(1) == 10  # saves at steps 3, 6, 9, (10), 12, 15, ...
    with pytest.raises(Crash):  # dies after 7 batches of epoch 2 (step 17): saved at step 15
        first.fit(crashing(batches, epoch=2, after=7))
    torch.manual_seed(777)  # the new process's generators start elsewhere

    again = make_trainer(make_tiny_model(seed=9, **RNG_HEAVY), tmp_path / "run", **options)
    again.resume(tmp_path / "run")
    assert (again.state.epoch, again.state.step, again.state.batch_in_epoch) == (1, 15, 5)
    again.fit(batch_source(tiny_examples, tiny_pipeline))
    for key, value in straight.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[key], value), key

    def timeless(path: Path) -> list[dict]:
        drop = {"epoch_time_s", "tokens_per_s", "elapsed_s", "rss_mb"}
        return [{k: v for k, v in r.items() if k not in drop} for r in read_metrics(path)]

    assert timeless(tmp_path / "run" / "metrics.jsonl") == timeless(
        tmp_path / "straight" / "metrics.jsonl"
    )


def test_sigterm_saves_at_the_current_step_and_stops(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    def tap(epoch: int, i: int) -> None:
        if epoch == 1 and i == 4:  # arrives while the 4th step is done
            os.kill(os.getpid(), signal.SIGTERM)

    signalled = Tapped(batch_source(tiny_examples, tiny_pipeline), tap)

    trainer = make_trainer(make_tiny_model(), tmp_path, max_epochs=2, log_every_steps=100)
    handler = signal.getsignal(signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as info:
        trainer.fit(signalled)
    assert signal.getsignal(signal.SIGTERM) == handler  # the handler is put back
    assert info.value.exit_code == 128 + signal.SIGTERM
    message = str(info.value)
    assert "SIGTERM" in message and "resume_from" in message and len(message.splitlines()) == 1
    last = load_checkpoint(tmp_path / "checkpoints" / "last.pt")
    assert last["trainer_state"]["step"] == 5 and last["trainer_state"]["batch_in_epoch"] == 5
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(last["model"][key], value)


def test_early_stopping_after_patience_epochs_without_a_new_best(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    losses = [3.0, 2.0, 2.5, 2.1, 2.2, 1.0]  # best at epoch 2, then no better
    trainer = make_trainer(
        make_tiny_model(),
        tmp_path,
        validate=scripted_validator(losses),
        max_epochs=6,
        patience=2,
    )
    state = trainer.fit(batch_source(tiny_examples, tiny_pipeline))
    assert (state.epoch, state.best_epoch) == (4, 2)
    again = make_trainer(make_tiny_model(), tmp_path, max_epochs=6, patience=2)
    again.resume(tmp_path)  # a resumed run remembers that it has stopped
    assert again.fit(batch_source(tiny_examples, tiny_pipeline)).epoch == 4


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_label_smoothing_changes_the_training_loss_only(
    tmp_path: Path,
    make_tiny_model,
    tiny_pipeline: TextPipeline,
    tiny_examples: Examples,
    smoothing: float,
) -> None:
    batch = first_batch(tiny_examples, tiny_pipeline)
    model = make_tiny_model()
    plain_nll, _ = teacher_forced_nll(model, tiny_examples[:8], tiny_pipeline, CPU)
    trainer = make_trainer(model, tmp_path, label_smoothing=smoothing, max_epochs=1)
    assert float(trainer.train_step(batch)) == pytest.approx(plain_nll, rel=1e-5)
    trainer.fit(batch_source(tiny_examples, tiny_pipeline))
    records = read_metrics(tmp_path / "metrics.jsonl")
    for record in records:
        plain, smoothed = (
            (record["loss"], record["smoothed_loss"])
            if record["type"] == "train"
            else (record["train_loss"], record["train_smoothed_loss"])
        )
        assert record.get("ppl", record.get("train_ppl")) == pytest.approx(math.exp(plain))
        assert (smoothed == plain) == (smoothing == 0.0)


def test_accumulated_step_equals_one_batch_of_all_the_examples(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    """trainer.accumulate=3 over three batches: the loss and the update of one
    batch that holds the three batches' examples."""
    vocab = tiny_pipeline.tgt_vocab
    ids = [[0, 1, 2, 3], [4, 5, 6], [7, 8, 9, 10, 11]]

    def batch_of(rows: list[int]) -> Batch:
        chosen = [tiny_examples[i] for i in rows]
        return collate(
            chosen, rows, pad_idx=vocab.pad_idx, bos_idx=vocab.bos_idx, eos_idx=vocab.eos_idx
        )

    parts = [batch_of(rows) for rows in ids]
    whole = batch_of([i for rows in ids for i in rows])
    assert whole.ntokens == sum(p.ntokens for p in parts)
    model_a = make_tiny_model()
    model_b = copy.deepcopy(model_a)
    options = {"optimizer": OptimizerName.sgd, "lr": 0.5}
    trainer_a = make_trainer(model_a, tmp_path / "a", accumulate=3, **options)
    trainer_b = make_trainer(model_b, tmp_path / "b", **options)
    nll_a, loss_a = trainer_a._train_step(parts)
    nll_b, loss_b = trainer_b._train_step(whole)
    assert trainer_a.state.step == trainer_b.state.step == 1
    assert float(nll_a) == pytest.approx(float(nll_b), rel=1e-5)
    assert float(loss_a) == pytest.approx(float(loss_b), rel=1e-5)
    moved = 0.0
    for (name, pa), pb in zip(model_a.named_parameters(), model_b.parameters(), strict=True):
        assert torch.allclose(pa, pb, atol=1e-6), name
    for pa, p0 in zip(model_a.parameters(), make_tiny_model().parameters(), strict=True):
        moved += float((pa - p0).detach().abs().sum())
    assert moved > 0  # the step did change the weights


def test_accumulate_counts_optimizer_steps_and_resumes_mid_epoch(
    tmp_path: Path, make_tiny_model, tiny_pipeline: TextPipeline, tiny_examples: Examples
) -> None:
    options = {"max_epochs": 2, "accumulate": 3, "save_every_steps": 2, "teacher_forcing": 0.5}
    straight = make_trainer(make_tiny_model(**RNG_HEAVY), tmp_path / "straight", **options)
    straight.fit(batch_source(tiny_examples, tiny_pipeline))
    assert straight.state.step == 2 * 4  # 10 batches an epoch: groups of 3, 3, 3 and 1

    batches = batch_source(tiny_examples, tiny_pipeline)
    first = make_trainer(make_tiny_model(**RNG_HEAVY), tmp_path / "run", **options)
    with pytest.raises(Crash):  # epoch 2 dies in its third group: saved at step 6 (batch 6)
        first.fit(crashing(batches, epoch=2, after=7))
    again = make_trainer(make_tiny_model(seed=9, **RNG_HEAVY), tmp_path / "run", **options)
    again.resume(tmp_path / "run")
    assert (again.state.step, again.state.batch_in_epoch) == (6, 6)
    again.fit(batch_source(tiny_examples, tiny_pipeline))
    for key, value in straight.model.state_dict().items():
        assert torch.equal(again.model.state_dict()[key], value), key
