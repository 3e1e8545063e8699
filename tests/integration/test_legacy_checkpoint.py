"""Checkpoints written by an earlier release keep loading and translating identically.

``tests/data/legacy_v1`` holds one tiny trained checkpoint per architecture,
written by `nmt train` before the code was reshaped (commit 3455225), with the
TSV output (rank, score, text) that `nmt translate` gave for ``input.txt``
with greedy and beam search at the time.  ``make_fixture.py`` there records
how they were made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

LEGACY = Path(__file__).resolve().parents[1] / "data" / "legacy_v1"
NMT = Path(sys.executable).with_name("nmt")
ARCHS = ("sutskever", "cho", "bahdanau", "luong")


def parse_tsv(text: str) -> list[tuple[str, str, float, str]]:
    rows = []
    for line in text.splitlines():
        number, rank, score, *words = line.split("\t")
        rows.append((number, rank, float(score), words[0] if words else ""))
    return rows


@pytest.mark.parametrize("strategy", ["greedy", "beam"])
@pytest.mark.parametrize("arch", ARCHS)
def test_old_checkpoint_translates_as_before(arch: str, strategy: str, tmp_path: Path) -> None:
    out = tmp_path / "out.tsv"
    args = [
        f"checkpoint={LEGACY / f'{arch}.pt'}",
        f"input={LEGACY / 'input.txt'}",
        f"output={out}",
        f"decoding={strategy}",
        "output_format=tsv",
        "decoding.n_best=1",
    ]
    env = {k: v for k, v in os.environ.items() if k != "NMT_DATA_DIR"} | {"OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [str(NMT), "translate", *args], cwd=tmp_path, capture_output=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")[-2000:]
    expected = parse_tsv((LEGACY / f"{arch}.{strategy}.tsv").read_text(encoding="utf-8"))
    got = parse_tsv(out.read_text(encoding="utf-8"))
    assert [row[:2] + row[3:] for row in got] == [row[:2] + row[3:] for row in expected]
    for new, old in zip(got, expected):
        assert new[2] == pytest.approx(old[2], abs=2e-4), new
