"""Figures written as PNG files: attention heatmaps, learning curves.

Figures are drawn on matplotlib's Agg canvas directly (no pyplot), so that
plotting never needs a display, never changes matplotlib's global backend and
leaves no open figures behind.  This module takes tokens as plain strings and
weights as tensors or arrays; it knows nothing of vocabularies or tokenizers.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
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


def _series(records: Sequence[Mapping[str, Any]], key: str) -> tuple[list[float], list[float]]:
    """(epochs, values) of the records that hold a finite number under ``key``."""
    xs, ys = [], []
    for record in records:
        value = record.get(key)
        if isinstance(value, (int, float)) and np.isfinite(value):
            xs.append(float(record["epoch"]))
            ys.append(float(value))
    return xs, ys


def plot_learning_curves(records: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Write the learning curves of a run to ``path`` (PNG): training and
    validation loss per epoch and, when the records hold it, validation BLEU.

    ``records`` are the per-epoch records of ``metrics.jsonl`` (dicts with
    ``epoch`` and any of ``train_loss``, ``val_loss``, ``val_bleu``); others
    (without ``epoch`` or of ``type`` other than ``epoch``) are skipped.
    """
    epochs = [r for r in records if "epoch" in r and r.get("type", "epoch") == "epoch"]
    bleu = _series(epochs, "val_bleu")
    panels = 2 if bleu[0] else 1
    fig = Figure(figsize=(5.0 * panels, 3.6), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    loss_ax = fig.add_subplot(1, panels, 1)
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        xs, ys = _series(epochs, key)
        if xs:
            loss_ax.plot(xs, ys, marker="o", label=label)
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("loss (NLL per token)")
    loss_ax.set_title("loss", fontsize="medium")
    if loss_ax.lines:
        loss_ax.legend()
    if panels == 2:
        bleu_ax = fig.add_subplot(1, panels, 2)
        bleu_ax.plot(*bleu, marker="o", color="tab:green")
        bleu_ax.set_xlabel("epoch")
        bleu_ax.set_ylabel("BLEU")
        bleu_ax.set_title("validation BLEU", fontsize="medium")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=DPI, format="png")
    return path
