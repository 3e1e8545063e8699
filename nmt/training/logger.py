"""The metrics of a run: ``metrics.jsonl``, TensorBoard, the learning-curve PNG.

One JSON object per line: ``type`` "train" (every ``log_every_steps`` steps)
or "epoch" (after validation).  With ``trainer.tensorboard=true`` every
number also goes to TensorBoard (``RUN/tensorboard/``) as ``<type>/<key>``
at the optimizer step.  Only the main process writes.
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from nmt.plots import plot_learning_curves

log = logging.getLogger(__name__)

CURVES_PNG = "learning_curves.png"
METRICS_FILE = "metrics.jsonl"
_warned_no_tensorboard = False


def _summary_writer(log_dir: Path, purge_step: int | None) -> Any:
    """A TensorBoard SummaryWriter, or None (with one warning) without tensorboard."""
    global _warned_no_tensorboard
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as exc:
        if not _warned_no_tensorboard:
            log.warning("trainer.tensorboard=true but TensorBoard is unavailable (%s)", exc)
            _warned_no_tensorboard = True
        return None
    return SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)


class MetricsLog:
    def __init__(self, run_dir: Path, *, enabled: bool = True, tensorboard: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / METRICS_FILE
        self.enabled = enabled
        self.tensorboard = tensorboard and enabled
        self._writer: Any = None
        self._purge_step: int | None = None

    def write(self, record: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tensorboard:
            self._to_tensorboard(record)

    def _to_tensorboard(self, record: dict[str, Any]) -> None:
        if self._writer is None:
            self._writer = _summary_writer(self.run_dir / "tensorboard", self._purge_step)
            if self._writer is None:
                self.tensorboard = False
                return
        kind, step = record.get("type", "train"), record["step"]
        for key, value in record.items():
            if key not in ("type", "step", "epoch") and isinstance(value, (int, float)):
                self._writer.add_scalar(f"{kind}/{key}", value, step)
        self._writer.flush()

    def size(self) -> int:
        """Bytes written so far (a checkpoint records it, to cut the log on resume)."""
        return self.path.stat().st_size if self.path.is_file() else 0

    def restore(self, nbytes: int | None, step: int, source_run_dir: Path | None) -> None:
        """Make the log what it was when a checkpoint was written: cut off the
        records of steps trained after it (they are about to be trained again),
        or, for a new run dir, start from a copy of the old run's log."""
        self._purge_step = step  # TensorBoard drops events after this step
        if not self.enabled or nbytes is None:  # None: a checkpoint older than this key
            return
        source = None if source_run_dir is None else source_run_dir / METRICS_FILE
        if self.path.is_file():
            if self.size() > nbytes:
                with self.path.open("r+b") as handle:
                    handle.truncate(nbytes)
        elif source is not None and source.is_file():
            self.run_dir.mkdir(parents=True, exist_ok=True)
            with source.open("rb") as src, self.path.open("wb") as dst:
                shutil.copyfileobj(src, dst)
                dst.truncate(min(nbytes, dst.tell()))

    def epoch_records(self) -> list[dict[str, Any]]:
        if not self.path.is_file():
            return []
        records = [json.loads(line) for line in self.path.read_text("utf-8").splitlines() if line]
        return [r for r in records if r.get("type") == "epoch"]

    def plot(self) -> Path | None:
        """The learning-curve PNG of the epochs so far (None before the first)."""
        records = self.epoch_records() if self.enabled else []
        if not records:
            return None
        return plot_learning_curves(records, self.run_dir / CURVES_PNG)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
