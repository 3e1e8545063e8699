"""One training run per run dir: a lock held for the whole run, and no silent
overwrite of a finished (or interrupted) run.

``nmt train`` claims its run dir before it writes anything of its own there:

* :class:`RunDirLock` takes an exclusive ``flock`` on ``RUN/.nmt-train.lock``
  and writes its PID into it.  A second process into the same dir is refused
  with the holder's PID.  The kernel drops the lock when its process ends,
  however it ends, so the file a killed run leaves behind blocks nothing.
* :func:`check_fresh_run_dir` refuses a dir that already holds a run
  (``checkpoints/`` with files in it, or a non-empty ``metrics.jsonl``),
  unless the run resumes from a checkpoint of that same dir
  (``trainer.resume_from``) or asks to start over (``trainer.overwrite``),
  which deletes the old run's outputs first.  Hydra's own ``.hydra/`` and
  ``train.log`` do not count: Hydra writes them before the command starts.
"""

from __future__ import annotations

import fcntl
import logging
import os
import shutil
from pathlib import Path

from nmt.checkpoint import CHECKPOINTS, LAST, resolve_checkpoint, run_dir_of
from nmt.training.errors import TrainingError
from nmt.training.logger import CURVES_PNG, METRICS_FILE

log = logging.getLogger(__name__)

LOCK_FILE = ".nmt-train.lock"
SUMMARY_FILE = "summary.json"
# what a run writes into its dir besides Hydra's files (deleted by an overwrite)
# ("test" holds best.pt's test-set reports, see nmt.commands.common.evaluate_test_splits)
RUN_OUTPUTS = (CHECKPOINTS, METRICS_FILE, SUMMARY_FILE, CURVES_PNG, "tensorboard", "test")


class RunDirError(TrainingError):
    """The run dir is in use by another process, or holds a run already."""


class RunDirLock:
    """An exclusive lock on a run dir, held from :meth:`acquire` to :meth:`release`.

    A process that holds a dir's lock gets the same lock again (the CLI claims
    the dir before Hydra writes into it, the train command again after)."""

    _held: dict[Path, RunDirLock] = {}  # this process's locks, by resolved dir

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> RunDirLock:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        held = RunDirLock._held.get(self.run_dir.resolve())
        if held is not None:
            return held
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirError(
                f"{self.run_dir} is in use by another nmt train (pid {holder}); wait for it "
                "to finish or choose another hydra.run.dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        self._fd = fd
        RunDirLock._held[self.run_dir.resolve()] = self
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.ftruncate(self._fd, 0)  # no PID of a finished run is left to read
            os.close(self._fd)  # closing drops the flock
            self._fd = None
            RunDirLock._held.pop(self.run_dir.resolve(), None)


def holds_run(run_dir: Path) -> bool:
    """Whether ``run_dir`` has checkpoints or metrics of an earlier run."""
    checkpoints = run_dir / CHECKPOINTS
    if checkpoints.is_dir() and any(checkpoints.iterdir()):
        return True
    metrics = run_dir / METRICS_FILE
    return metrics.is_file() and metrics.stat().st_size > 0


def resumes_in_place(run_dir: Path, resume_from: str | None) -> bool:
    """Whether ``resume_from`` names a checkpoint inside ``run_dir``."""
    if not resume_from:
        return False
    return run_dir_of(resolve_checkpoint(resume_from, LAST)) == run_dir.resolve()


def check_fresh_run_dir(run_dir: Path, *, resume_from: str | None, overwrite: bool) -> None:
    """Refuse to start a new run over an old one (see the module docstring);
    with ``overwrite`` delete the old run's outputs instead."""
    run_dir = Path(run_dir)
    if not holds_run(run_dir):
        return
    in_place = resumes_in_place(run_dir, resume_from)
    if in_place and overwrite:
        raise RunDirError(
            f"trainer.overwrite=true would delete the checkpoint trainer.resume_from="
            f"{resume_from} names; drop one of the two"
        )
    if in_place:
        return
    if not overwrite:
        raise RunDirError(
            f"{run_dir} already holds a run; continue it with trainer.resume_from={run_dir}, "
            "or start over with trainer.overwrite=true (deletes its checkpoints and metrics)"
        )
    log.warning("trainer.overwrite=true: deleting the earlier run's outputs in %s", run_dir)
    for name in RUN_OUTPUTS:
        path = run_dir / name
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)


def claim_run_dir(run_dir: Path, *, resume_from: str | None, overwrite: bool) -> RunDirLock:
    """Lock ``run_dir`` and check it may take this run; the caller releases the lock."""
    lock = RunDirLock(run_dir).acquire()
    try:
        check_fresh_run_dir(run_dir, resume_from=resume_from, overwrite=overwrite)
    except BaseException:
        lock.release()
        raise
    return lock
