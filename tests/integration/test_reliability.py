"""The quick probes of scripts/reliability.py against the installed `nmt`:
those listed in EXPECTED_PASS must pass, and the report lists every probe."""

from __future__ import annotations

import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts"


@pytest.fixture(scope="module")
def reliability() -> ModuleType:
    sys.path.insert(0, str(SCRIPTS))
    try:
        import reliability as module
    finally:
        sys.path.remove(str(SCRIPTS))
    return module


def test_quick_probes(reliability: ModuleType, tmp_path: Path) -> None:
    results, setup_s = reliability.run_probes(tmp_path / "lab", quick=True)
    quick = [p for p in reliability.PROBES if p.quick]
    assert set(results) == {p.name for p in quick}
    for probe in quick:
        outcome, verdict = results[probe.name], reliability.verdict(results[probe.name])
        if probe.name in reliability.EXPECTED_PASS and not (
            verdict == "SKIPPED" and probe.skip_reason
        ):
            assert verdict == "PASS", f"{probe.name}: {outcome}"
    report = tmp_path / "reliability.md"
    reliability.write_report(report, results, True, setup_s)
    text = report.read_text(encoding="utf-8")
    assert "## Threads" in text and "<!-- reliability:quick -->" in text
    for probe in quick:
        assert f"| `{probe.name}` |" in text
