"""Teacher-forcing ratio as a function of the optimizer step.

Scheduled sampling (Bengio et al. 2015, sec. 2.4) feeds the decoder the
reference token with probability eps_i and its own prediction otherwise, and
lowers eps_i as training goes on.  The three decays of the paper's Figure 2,
with ``i`` the number of optimizer steps already taken:

- linear:          eps_i = max(eps_min, start - k * i)
- exponential:     eps_i = start * k ** i                      (0 < k < 1)
- inverse sigmoid: eps_i = start * k / (k + exp(i / k))         (k >= 1)

The paper's curves start at 1; here they are scaled by ``start`` (the
``trainer.teacher_forcing`` key), and every schedule is floored at
``trainer.teacher_forcing_min``.  ``constant`` keeps ``start`` throughout.
"""

from __future__ import annotations

import math

from nmt.config import ConfigError, TeacherForcingSchedule, TrainerConfig


def scheduled_ratio(
    schedule: TeacherForcingSchedule,
    step: int,
    *,
    start: float,
    k: float | None,
    minimum: float = 0.0,
) -> float:
    """The probability of feeding the reference token at optimizer step ``step``."""
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    if schedule == TeacherForcingSchedule.constant:
        return start
    if k is None:
        raise ConfigError(f"teacher-forcing schedule {schedule.value} needs k")
    if schedule == TeacherForcingSchedule.linear:
        ratio = start - k * step
    elif schedule == TeacherForcingSchedule.exponential:
        ratio = start * k**step
    elif schedule == TeacherForcingSchedule.inverse_sigmoid:
        exponent = step / k
        # exp overflows near 710; the ratio is 0 to double precision long before.
        ratio = 0.0 if exponent > 700 else start * k / (k + math.exp(exponent))
    else:  # pragma: no cover - the Enum is closed
        raise ConfigError(f"unknown teacher-forcing schedule {schedule!r}")
    return max(minimum, ratio)


def teacher_forcing_at(cfg: TrainerConfig, step: int) -> float:
    """``scheduled_ratio`` with the parameters of a trainer config."""
    return scheduled_ratio(
        cfg.teacher_forcing_schedule,
        step,
        start=cfg.teacher_forcing,
        k=cfg.teacher_forcing_k,
        minimum=cfg.teacher_forcing_min,
    )
