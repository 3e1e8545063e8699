"""Why training stopped early (the CLI turns these into one line)."""

from __future__ import annotations


class TrainingError(RuntimeError):
    """Training cannot go on (for example a non-finite loss)."""


class TrainingInterrupted(TrainingError):
    """SIGINT/SIGTERM stopped the run after saving ``last.pt``."""

    def __init__(self, message: str, signum: int) -> None:
        super().__init__(message)
        self.exit_code = 128 + signum
