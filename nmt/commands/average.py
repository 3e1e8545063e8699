"""`nmt average`: parameter averaging of checkpoints (see nmt.training.averaging)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

from nmt.checkpoint import (
    BEST,
    CHECKPOINTS,
    LAST,
    CheckpointError,
    resolve_checkpoint,
    save_checkpoint,
)
from nmt.config import AverageConfig
from nmt.files import check_output
from nmt.training.averaging import average_checkpoints, last_snapshots

log = logging.getLogger(__name__)


def refuse_run_checkpoint(output: Path) -> None:
    """A run's last.pt (its optimizer state: what resuming needs) or best.pt
    (what its scores describe) is no place for an average."""
    real = Path(os.path.realpath(output))
    if real.name in (LAST, BEST) and real.parent.name == CHECKPOINTS:
        lost = "the state it resumes from" if real.name == LAST else "the weights it scored"
        raise CheckpointError(
            f"output={output}: add overwrite=true to replace a run's {real.name} ({lost}), "
            "or write the average elsewhere"
        )


def run(cfg: AverageConfig, out_dir: Path | None = None) -> Path:
    """Average the checkpoints ``cfg`` names and write ``cfg.output``."""
    paths: list[str | Path] = (
        list(last_snapshots(cfg.run, cfg.last)) if cfg.run else list(cfg.checkpoints)
    )
    check_output(cfg.output, [resolve_checkpoint(p) for p in paths])
    if not cfg.overwrite:
        refuse_run_checkpoint(Path(cfg.output))
    payload = average_checkpoints(paths)
    output = save_checkpoint(payload, cfg.output)
    log.info("averaged %d checkpoints into %s", len(paths), output)
    print(output)
    return output
