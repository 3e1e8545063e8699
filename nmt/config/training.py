"""Schema of how a model is trained: groups ``optimizer``, ``scheduler`` and
``trainer`` (epochs, batches, teacher forcing, precision, checkpoints)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from nmt.config.checks import check_finite
from nmt.config.errors import ConfigError


class TeacherForcingSchedule(str, Enum):
    """Decay of the teacher-forcing ratio over optimizer steps (Bengio et al. 2015)."""

    constant = "constant"
    linear = "linear"
    exponential = "exponential"
    inverse_sigmoid = "inverse_sigmoid"


class OptimizerName(str, Enum):
    adam = "adam"
    adamw = "adamw"
    sgd = "sgd"


class SchedulerName(str, Enum):
    none = "none"
    plateau = "plateau"  # per epoch, on the validation loss
    step = "step"  # per epoch
    warmup_inverse_sqrt = "warmup_inverse_sqrt"  # per optimizer step
    cosine = "cosine"  # per optimizer step


class Precision(str, Enum):
    """Autocast dtype of the training forward pass (weights stay fp32)."""

    fp32 = "fp32"
    bf16 = "bf16"
    fp16 = "fp16"  # with a gradient scaler
    auto = "auto"  # bf16 where the device has bfloat16 arithmetic, else fp32


class DeviceChoice(str, Enum):
    """Where a command runs; auto = CUDA when there is one."""

    auto = "auto"
    cpu = "cpu"
    cuda = "cuda"


class BestMetric(str, Enum):
    bleu = "bleu"
    loss = "loss"


@dataclass
class OptimizerConfig:
    name: OptimizerName = OptimizerName.adam
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.0  # sgd only
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])

    def __post_init__(self) -> None:
        check_finite(self, "optimizer.")
        if self.lr <= 0:
            raise ConfigError(f"optimizer.lr={self.lr} must be > 0")
        if self.weight_decay < 0:
            raise ConfigError(f"optimizer.weight_decay={self.weight_decay} must be >= 0")
        if not 0.0 <= self.momentum < 1.0:
            raise ConfigError(f"optimizer.momentum={self.momentum} must be in [0, 1)")
        if len(self.betas) != 2 or not all(0.0 <= b < 1.0 for b in self.betas):
            raise ConfigError(f"optimizer.betas={self.betas} takes two numbers in [0, 1)")


@dataclass
class SchedulerConfig:
    name: SchedulerName = SchedulerName.none
    factor: float = 0.5  # plateau, step: multiply the lr by this
    # plateau: epochs without improvement of the val loss before a cut (0: cut at
    # the first epoch that does not improve, what every recipe uses)
    patience: int = 0
    step_size: int = 1  # step: epochs between decays
    min_lr: float = 1e-6  # plateau: floor; cosine: the value it decays to
    # warmup_inverse_sqrt, cosine: optimizer steps of linear warm-up from lr/warmup_steps
    warmup_steps: int = 0

    def __post_init__(self) -> None:
        check_finite(self, "scheduler.")
        if not 0.0 < self.factor <= 1.0:
            raise ConfigError(f"scheduler.factor={self.factor} must be in (0, 1]")
        if self.patience < 0 or self.step_size < 1:
            raise ConfigError("scheduler.patience must be >= 0 and scheduler.step_size >= 1")
        if self.min_lr < 0:
            raise ConfigError(f"scheduler.min_lr={self.min_lr} must be >= 0")
        if self.warmup_steps < 0:
            raise ConfigError(f"scheduler.warmup_steps={self.warmup_steps} must be >= 0")
        if self.name == SchedulerName.warmup_inverse_sqrt and self.warmup_steps < 1:
            raise ConfigError(
                "scheduler=warmup_inverse_sqrt needs scheduler.warmup_steps >= 1 "
                "(the lr peaks there, then falls as 1/sqrt(step))"
            )


@dataclass
class TrainerConfig:
    max_epochs: int = 10
    max_steps: int | None = None  # stop after this many optimizer steps in all
    max_minutes: float | None = None  # wall-clock budget; stops after the epoch it ends in
    batch_size: int = 128
    # batches whose gradients add up to one optimizer step (fairseq's
    # --update-freq): the effective batch is accumulate x batch_size sentences
    accumulate: int = 1
    clip_grad_norm: float | None = 1.0
    teacher_forcing: float = 1.0  # the ratio (constant schedule) or its start value
    # Bengio et al. 2015 (sec. 2.4), i = optimizer steps taken, each floored at
    # teacher_forcing_min: linear tf - k*i; exponential tf * k^i (0<k<1);
    # inverse_sigmoid tf * k / (k + exp(i/k)) (k>=1).
    teacher_forcing_schedule: TeacherForcingSchedule = TeacherForcingSchedule.constant
    teacher_forcing_k: float | None = None  # the schedule's k; needed unless constant
    teacher_forcing_min: float = 0.0
    device: DeviceChoice = DeviceChoice.auto
    seed: int = 1234
    best_metric: BestMetric = BestMetric.bleu
    bleu_every_epoch: bool = True
    val_max_examples: int | None = None  # decode only this many val lines for BLEU
    log_every_steps: int = 50
    progress_every_s: float = 30.0  # stderr not a terminal: a plain progress line this often
    test_split: str | None = "test_2016_flickr"  # evaluated at the end; "all" = every
    # test split found locally; null = none
    resume_from: str | None = None  # a checkpoint, or a run dir (its checkpoints/last.pt)
    # with resume_from: take the model's weights (and vocabularies) only; a new
    # optimizer, schedule and step count (how an averaged checkpoint trains on)
    weights_only: bool = False
    # padded source + target tokens per batch (beside batch_size sentences); null = off
    max_tokens: int | None = None
    label_smoothing: float = 0.0  # training loss only; val loss/ppl stay the plain NLL
    patience: int | None = None  # early stop after this many epochs without a new best
    precision: Precision = Precision.fp32  # autocast: fp32 | bf16 | fp16 (grad scaler) | auto
    compile: bool = False  # torch.compile the model's forward
    save_every_steps: int | None = None  # also save last.pt mid-epoch every N steps
    keep_last: int = 0  # keep the newest N checkpoints/step_NNNNNN.pt (0 = none)
    overwrite: bool = False  # start over in a run dir holding a run (deletes its outputs)
    tensorboard: bool = False  # also log to TensorBoard (when it is installed)
    num_workers: int = 0  # DataLoader processes that assemble batches (0 = in the trainer)

    def __post_init__(self) -> None:
        check_finite(self, "trainer.")
        if self.max_epochs < 1:
            raise ConfigError("trainer.max_epochs must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("trainer.max_steps must be >= 1 or null")
        if self.batch_size < 1:
            raise ConfigError("trainer.batch_size must be >= 1")
        self._check_robustness_keys()
        if not 0.0 <= self.teacher_forcing <= 1.0:
            raise ConfigError("trainer.teacher_forcing must be in [0, 1]")
        self._check_teacher_forcing_schedule()
        if self.clip_grad_norm is not None and self.clip_grad_norm <= 0:
            raise ConfigError("trainer.clip_grad_norm must be > 0 or null")

    def _check_robustness_keys(self) -> None:
        if self.accumulate < 1:
            raise ConfigError(f"trainer.accumulate={self.accumulate} must be >= 1")
        for key in ("max_tokens", "patience", "save_every_steps"):
            value = getattr(self, key)
            if value is not None and value < 1:
                raise ConfigError(f"trainer.{key}={value} must be >= 1 or null")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"trainer.label_smoothing={self.label_smoothing} must be in [0, 1)")
        if self.num_workers < 0:
            raise ConfigError(f"trainer.num_workers={self.num_workers} must be >= 0")
        if self.keep_last < 0:
            raise ConfigError(f"trainer.keep_last={self.keep_last} must be >= 0")
        if self.log_every_steps < 1:
            raise ConfigError("trainer.log_every_steps must be >= 1")
        if self.progress_every_s <= 0:
            raise ConfigError(f"trainer.progress_every_s={self.progress_every_s} must be > 0")
        if self.max_minutes is not None and self.max_minutes <= 0:
            raise ConfigError(f"trainer.max_minutes={self.max_minutes} must be > 0 or null")

    def _check_teacher_forcing_schedule(self) -> None:
        schedule, k = self.teacher_forcing_schedule, self.teacher_forcing_k
        if not 0.0 <= self.teacher_forcing_min <= self.teacher_forcing:
            raise ConfigError("trainer.teacher_forcing_min must be in [0, trainer.teacher_forcing]")
        allowed = {
            TeacherForcingSchedule.linear: ("> 0 (the decrease per step)", lambda v: v > 0),
            TeacherForcingSchedule.exponential: ("in (0, 1)", lambda v: 0 < v < 1),
            TeacherForcingSchedule.inverse_sigmoid: (">= 1", lambda v: v >= 1),
        }
        if schedule in allowed:
            text, ok = allowed[schedule]
            if k is None or not ok(k):
                raise ConfigError(
                    f"trainer.teacher_forcing_schedule={schedule.value} needs "
                    f"trainer.teacher_forcing_k {text}; got {k}"
                )
