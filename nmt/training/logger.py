"""The metrics of a run: ``metrics.jsonl``, TensorBoard, the learning-curve PNG,
and the progress display of an epoch.

One JSON object per line: ``type`` "train" (every ``log_every_steps`` steps)
or "epoch" (after validation).  With ``trainer.tensorboard=true`` every
number also goes to TensorBoard (``RUN/tensorboard/``) as ``<type>/<key>``
at the optimizer step.  Only the main process writes.

Progress goes to stderr: a tqdm bar on a terminal; otherwise (a log file,
nohup, CI) one plain line every ``trainer.progress_every_s`` seconds, so that
a redirected log holds no carriage returns.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import time
from pathlib import Path
from typing import Any, TextIO

from tqdm.auto import tqdm

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


class PlainProgress:
    """The epoch's progress as one plain line every ``every_s`` seconds, with the
    figures of the latest ``set_postfix`` (the interface tqdm's bar offers)."""

    def __init__(
        self, total: int, initial: int, epoch: int, every_s: float, stream: TextIO
    ) -> None:
        self.total, self.n, self.epoch = total, initial, epoch
        self.every_s, self.stream = every_s, stream
        self.figures: dict[str, str] = {}
        self._last = time.monotonic()

    def set_postfix(self, **figures: str) -> None:
        self.figures = {key: str(value) for key, value in figures.items()}

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.monotonic()
        if now - self._last >= self.every_s:
            self._last = now
            self.write_line()

    def write_line(self) -> None:
        figures = " ".join(
            f"{key.replace('_', '/')} {value}" for key, value in self.figures.items()
        )
        line = f"epoch {self.epoch} batch {self.n}/{self.total}" + (
            f" | {figures}" if figures else ""
        )
        print(line, file=self.stream, flush=True)

    def close(self) -> None:
        """Nothing to clear (tqdm's bar erases itself here)."""


def epoch_progress(
    total: int,
    initial: int,
    epoch: int,
    *,
    enabled: bool,
    every_s: float,
    stream: TextIO | None = None,
) -> Any:
    """A tqdm bar when ``stream`` (stderr) is a terminal, else a
    :class:`PlainProgress`; a silent bar when not ``enabled`` (ranks > 0)."""
    stream = sys.stderr if stream is None else stream
    if enabled and not stream.isatty():
        return PlainProgress(total, initial, epoch, every_s, stream)
    return tqdm(
        total=total,
        initial=initial,
        desc=f"epoch {epoch}",
        unit="batch",
        leave=False,
        disable=not enabled,
        file=stream,
    )
