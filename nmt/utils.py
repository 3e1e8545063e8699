"""Seeding, device choice, CPU threads and logging set-up."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import random

import torch

log = logging.getLogger("nmt")


def seed_everything(seed: int) -> None:
    """Seed Python's and torch's generators (CPU and every CUDA device)."""
    random.seed(seed)
    torch.manual_seed(seed)
    try:
        import numpy as np

        np.random.seed(seed % (2**32))
    except ImportError:  # numpy is optional
        pass


def pick_device(choice: str) -> torch.device:
    """``auto`` takes CUDA when present; ``cuda`` without a GPU is an error.

    ``choice`` is "auto", "cpu" or "cuda" (a str Enum such as DeviceChoice works).
    """
    choice = str(getattr(choice, "value", choice))
    if choice not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device={choice!r}: use auto, cpu or cuda")
    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("trainer.device=cuda but no CUDA GPU is visible; use device=auto or cpu")
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda")


def cpu_cores() -> int:
    """Cores this process may run on (its affinity mask, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def choose_threads(threads: int | None, parallel_jobs: int = 1) -> int | None:
    """The torch CPU thread count a command should use, None for torch's default.

    In order: ``threads`` when given; ``$OMP_NUM_THREADS`` when set to a
    positive integer; the cores split evenly among ``parallel_jobs`` jobs
    running side by side (a multirun sweep with a parallel launcher), at least
    one each; else None.
    """
    if threads is not None:
        return threads
    env = os.environ.get("OMP_NUM_THREADS", "").strip()
    if env.isdigit() and int(env) >= 1:
        return int(env)
    if parallel_jobs > 1:
        return max(1, cpu_cores() // parallel_jobs)
    return None


def set_threads(threads: int | None, parallel_jobs: int = 1) -> int:
    """Apply :func:`choose_threads` to torch (intra-op, and inter-op while torch
    still allows it); return the intra-op thread count now in force."""
    chosen = choose_threads(threads, parallel_jobs)
    if chosen is not None:
        torch.set_num_threads(chosen)
        # allowed once per process and only before any inter-op work ran
        with contextlib.suppress(RuntimeError):
            torch.set_num_interop_threads(chosen)
    return torch.get_num_threads()


def setup_logging(level: int = logging.INFO) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=level, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s"
        )
    logging.getLogger("nmt").setLevel(level)


def rss_mb() -> float:
    """This process's resident memory now, in MiB (0 where /proc is absent)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            pages = int(handle.read().split()[1])
    except (OSError, ValueError, IndexError):
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


# oneDNN caches a compiled primitive per tensor shape (RNNs in bf16 on CPU make
# one per batch shape); its default of 1024 entries grew a Multi30k run's RSS by
# ~100 MB an epoch for many epochs.  64 keeps the recent shapes (a bucketed
# epoch revisits them; on a loaded 2-core machine we saw no speed difference).
# oneDNN reads it when it first builds a primitive, so setting it at start-up
# takes effect; a user's setting wins.
ONEDNN_CACHE = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "64")


def bound_native_caches() -> None:
    """Cap oneDNN's primitive cache (unless the environment sets it)."""
    os.environ.setdefault(*ONEDNN_CACHE)


def release_free_memory() -> None:
    """Hand memory the allocator holds but no longer uses back to the system
    (glibc's ``malloc_trim``; elsewhere nothing).  Cheap: a few milliseconds."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
