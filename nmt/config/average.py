"""`nmt average`: the root config of parameter averaging."""

from __future__ import annotations

from dataclasses import dataclass, field

from omegaconf import MISSING

from nmt.config.errors import ConfigError


@dataclass
class AverageConfig:
    """Average ``checkpoints`` (a list of files or run dirs), or the newest
    ``last`` step checkpoints of the run dir ``run``; write ``output``
    (never one of the inputs; a run's ``last.pt`` or ``best.pt`` only with
    ``overwrite=true``)."""

    output: str = MISSING  # the averaged checkpoint to write
    checkpoints: list[str] = field(default_factory=list)
    run: str | None = None  # a run dir: average its newest `last` checkpoints/step_*.pt
    last: int = 5
    overwrite: bool = False  # allow output= to be a run's checkpoints/last.pt or best.pt

    def __post_init__(self) -> None:
        if bool(self.checkpoints) == bool(self.run):
            raise ConfigError("average: give checkpoints=[a.pt,b.pt,...] or run=DIR, not both")
        if self.last < 1:
            raise ConfigError(f"average: last={self.last} must be >= 1")
        if self.checkpoints and len(self.checkpoints) < 2:
            raise ConfigError("average: checkpoints= needs at least two files")
