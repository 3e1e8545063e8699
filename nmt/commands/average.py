"""`nmt average`: parameter averaging of checkpoints (see nmt.training.averaging)."""

from __future__ import annotations

import logging
from pathlib import Path

from nmt.checkpoint import save_checkpoint
from nmt.config import AverageConfig
from nmt.training.averaging import average_checkpoints, last_snapshots

log = logging.getLogger(__name__)


def run(cfg: AverageConfig, out_dir: Path | None = None) -> Path:
    """Average the checkpoints ``cfg`` names and write ``cfg.output``."""
    paths: list[str | Path] = (
        list(last_snapshots(cfg.run, cfg.last)) if cfg.run else list(cfg.checkpoints)
    )
    payload = average_checkpoints(paths)
    output = save_checkpoint(payload, cfg.output)
    log.info("averaged %d checkpoints into %s", len(paths), output)
    print(output)
    return output
