"""Figures written as PNG files: attention heatmaps.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so that
plotting never needs a display, never changes matplotlib's global backend and
leaves no open figures behind.  This module takes tokens as plain strings and
weights as tensors or arrays; it knows nothing of vocabularies or tokenizers.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
_CELL_PX = 30  # pixels per token along each axis
_MARGIN_PX = (220, 160)  # room for labels, colour bar and title: (width, height)
_MIN_PX = (400, 300)
_MAX_PX = (3000, 3000)


def attention_png_size(num_src: int, num_out: int) -> tuple[int, int]:
    """(width, height) in pixels of the PNG :func:`plot_attention` writes."""
    width = _MARGIN_PX[0] + _CELL_PX * num_src
    height = _MARGIN_PX[1] + _CELL_PX * num_out
    return (
        min(max(width, _MIN_PX[0]), _MAX_PX[0]),
        min(max(height, _MIN_PX[1]), _MAX_PX[1]),
    )


def _label(token: str) -> str:
    return token.replace("$", r"\$")  # "$...$" would be read as mathtext


def plot_attention(
    attention: Any,
    src_tokens: Sequence[str],
    out_tokens: Sequence[str],
    path: str | Path,
    *,
    title: str | None = None,
) -> Path:
    """Write a heatmap of ``attention`` (T, S) - output tokens down, source
    tokens across - to ``path`` (PNG).  ``attention`` is a tensor or array."""
    weights = np.asarray(
        attention.detach().cpu().float() if hasattr(attention, "detach") else attention,
        dtype=float,
    )
    rows, cols = len(out_tokens), len(src_tokens)
    if weights.shape != (rows, cols):
        raise ValueError(
            f"attention has shape {weights.shape} but there are {rows} output and "
            f"{cols} source tokens"
        )
    width, height = attention_png_size(cols, rows)
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
    ax.set_xticks(range(cols), labels=[_label(t) for t in src_tokens], rotation=90)
    ax.set_yticks(range(rows), labels=[_label(t) for t in out_tokens])
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(_label(title), fontsize="medium")
    fig.colorbar(image, ax=ax, fraction=0.05)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # a token in a script the font lacks: boxes, not noise
        warnings.filterwarnings("ignore", message="Glyph .* missing from font")
        fig.savefig(path, dpi=DPI, format="png")
    return path
