"""The reliability probes' fixtures and report.

One lab (corpus and tiny trained run) per session.  Probes marked slow run
only with ``NMT_RELIABILITY_SLOW=1``; with ``NMT_RELIABILITY_REPORT=FILE``
the session writes every probe's description and outcome to FILE as JSON,
which ``scripts/reliability.py`` turns into docs/reliability.md.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_lab import OUTCOMES, Lab, ProbeInfo, set_up

_ROWS: dict[str, dict[str, Any]] = {}
_LAB_ROOT: list[Path] = []


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Lab:
    root = tmp_path_factory.mktemp("lab")
    _LAB_ROOT.append(root)
    return set_up(root)


def _info(item: pytest.Item) -> ProbeInfo | None:
    return getattr(getattr(item, "function", None), "probe", None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if os.environ.get("NMT_RELIABILITY_SLOW"):
        return
    skip = pytest.mark.skip(reason="slow probe: scripts/reliability.py runs it")
    for item in items:
        info = _info(item)
        if info is not None and info.slow:
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    result = yield
    report = result.get_result()
    info = _info(item)
    if info is None or (report.when != "call" and not report.skipped):
        return
    name = item.name
    outcome = OUTCOMES.get(name)
    status = "SKIPPED" if report.skipped else "PASS" if report.passed else "FAIL"
    if hasattr(report, "wasxfail"):
        status = "EXPECTED FAIL" if report.skipped else "PASS"
    note = outcome.note if outcome else ""
    if report.skipped and not hasattr(report, "wasxfail"):
        note = str(report.longrepr[-1]) if isinstance(report.longrepr, tuple) else note
    _ROWS[name] = {
        "name": name,
        "tried": info.tried,
        "expected": info.expected,
        "slow": info.slow,
        "status": status,
        "owner": getattr(report, "wasxfail", ""),
        "rc": outcome.rc if outcome else None,
        "first_error": outcome.first_error if outcome else "",
        "note": note.removeprefix("Skipped: "),
    }


def pytest_sessionfinish(session: pytest.Session) -> None:
    target = os.environ.get("NMT_RELIABILITY_REPORT")
    if not target or not _ROWS:
        return
    rows = [_ROWS[item.name] for item in session.items if item.name in _ROWS]
    data = {"lab_root": str(_LAB_ROOT[0]) if _LAB_ROOT else None, "probes": rows}
    Path(target).write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
