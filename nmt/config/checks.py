"""Checks every config dataclass shares: no float key may be NaN or infinite.

Range checks (``> 0``, ``in [0, 1)``) compare with ``<`` and ``>``, and NaN
fails every comparison, so a NaN would slip through them unseen; infinity
passes a one-sided bound such as ``lr > 0``.  ``check_finite`` runs first in
each ``__post_init__`` and names the key.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from nmt.config.errors import ConfigError


def _floats(value: Any) -> list[float]:
    """The float numbers a field holds: itself, or the items of a list/tuple."""
    items = value if isinstance(value, list | tuple) else [value]
    return [v for v in items if isinstance(v, float)]


def check_finite(obj: Any, prefix: str = "") -> None:
    """Raise ConfigError naming ``prefix + key`` when a float field of the
    dataclass ``obj`` (or an item of a list field) is NaN or +-inf."""
    for f in dataclasses.fields(obj):
        for value in _floats(getattr(obj, f.name)):
            if not math.isfinite(value):
                raise ConfigError(f"{prefix}{f.name}={value} must be a finite number")
