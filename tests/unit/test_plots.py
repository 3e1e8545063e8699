"""Tests for nmt.plots: attention heatmaps are valid PNG files of the expected size."""

from __future__ import annotations

import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from nmt.plots import attention_png_size, plot_attention

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) from the IHDR chunk, after checking signature and CRC."""
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    body, (crc,) = data[16:29], struct.unpack(">I", data[29:33])
    assert zlib.crc32(kind + body) == crc
    assert data.endswith(b"IEND\xaeB`\x82")
    width, height = struct.unpack(">II", body[:8])
    return width, height


@pytest.mark.parametrize(("num_src", "num_out"), [(1, 1), (6, 9), (30, 4)])
def test_heatmap_is_a_png_of_the_expected_size(tmp_path: Path, num_src: int, num_out: int) -> None:
    attention = torch.rand(num_out, num_src).softmax(-1)
    src = [f"s{i}" for i in range(num_src)]
    out = [f"t{i}" for i in range(num_out)]
    path = plot_attention(attention, src, out, tmp_path / "sub" / "a.png", title="line 1")
    assert path.is_file()
    assert png_size(path) == attention_png_size(num_src, num_out)


def test_size_grows_with_tokens_and_is_bounded() -> None:
    small, large = attention_png_size(3, 3), attention_png_size(40, 30)
    assert large[0] > small[0] and large[1] > small[1]
    assert attention_png_size(10_000, 10_000) == attention_png_size(20_000, 20_000)


def test_odd_tokens_and_numpy_input(tmp_path: Path) -> None:
    tokens = ["$", "$x$", "a$b$c", "", "日本", "\\"]
    path = plot_attention(np.eye(len(tokens)), tokens, tokens, tmp_path / "odd.png")
    assert png_size(path) == attention_png_size(len(tokens), len(tokens))


def test_shape_must_match_the_tokens(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="shape"):
        plot_attention(torch.rand(2, 3), ["a", "b"], ["x", "y"], tmp_path / "bad.png")
    assert not (tmp_path / "bad.png").exists()


def test_plots_do_not_import_the_data_layer_or_pyplot() -> None:
    code = (
        "import sys, nmt.plots; "
        "bad = [m for m in sys.modules if m.startswith('nmt.data') or m == 'matplotlib.pyplot']; "
        "print(bad); sys.exit(bool(bad))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
