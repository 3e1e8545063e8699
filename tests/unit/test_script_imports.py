"""scripts/ use only nmt's public API: no private name (a leading underscore)
of any nmt module, and none of the command bodies that change with the
commands (nmt.cli, nmt.commands.train, nmt.commands.data).  import-linter
checks packages; scripts/ is a folder of programs, so this test reads their
imports with ``ast``."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SCRIPTS = sorted((Path(__file__).resolve().parents[2] / "scripts").glob("*.py"))
PRIVATE_MODULES = ("nmt.cli", "nmt.commands.train", "nmt.commands.data")


def nmt_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every ``from nmt... import name`` and ``import nmt...`` in ``path``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "nmt":
            found += [(node.module or "", alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.split(".")[0] == "nmt"]
    return found


def private(module: str, name: str) -> bool:
    parts = [*module.split("."), name]
    in_private_module = any(module == m or module.startswith(m + ".") for m in PRIVATE_MODULES)
    return in_private_module or any(part.startswith("_") for part in parts if part)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_scripts_import_only_the_public_api(script: Path) -> None:
    bad = [f"{module}.{name}" for module, name in nmt_imports(script) if private(module, name)]
    assert not bad, f"{script.name} imports private names of nmt: {bad}"


def test_the_check_sees_private_imports(tmp_path: Path) -> None:
    sample = tmp_path / "x.py"
    sample.write_text(
        "from nmt.models.encoder import _RNN\nfrom nmt.commands.train import make_batches\n"
        "import nmt.config\n",
        encoding="utf-8",
    )
    found = nmt_imports(sample)
    assert [private(m, n) for m, n in found] == [True, True, False]
