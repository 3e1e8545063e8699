"""Seeding, device choice and logging set-up."""

from __future__ import annotations

import logging
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


def setup_logging(level: int = logging.INFO) -> None:
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=level, format="[%(asctime)s][%(name)s][%(levelname)s] %(message)s"
        )
    logging.getLogger("nmt").setLevel(level)
