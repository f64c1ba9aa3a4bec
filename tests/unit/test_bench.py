"""Every benchmark imports, shows its --help, and names only things that exist (a benchmark's function-level
import of a renamed private helper went unnoticed until it was run: issue 28)."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
SCRIPTS = sorted(BENCH.glob("*.py"))


def test_there_are_benchmarks() -> None:
    assert len(SCRIPTS) >= 5


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_auditkit_name_a_benchmark_imports_exists(script: Path) -> None:
    """Imports inside functions too, which ``--help`` never reaches."""
    missing = []
    for node in ast.walk(ast.parse(script.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("auditkit"):
            module = importlib.import_module(node.module)
            missing += [
                f"{node.module}.{a.name}"
                for a in node.names
                if not hasattr(module, a.name) and not _is_module(f"{node.module}.{a.name}")
            ]
    assert not missing, missing


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # the parent is a module, not a package
        return False


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_every_benchmark_shows_its_help(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script), "--help"], check=False, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "usage" in result.stdout.lower()
