"""The layout's rules, checked on the source: no import cycles (function-level imports included), no
imports named in strings, and each layer imports only from the layers below it (docs/development.md)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"auditkit": ROOT / "auditkit", "auditkit.cli": ROOT / "cli"}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg, base in PACKAGES.items():
        for path in base.rglob("*.py"):
            parts = [pkg, *path.relative_to(base).with_suffix("").parts]
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _owner(name: str) -> str | None:
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(path: Path) -> tuple[set[str], list[str]]:
    """auditkit modules ``path`` imports (anywhere but under ``if TYPE_CHECKING``), and string imports."""
    tree = ast.parse(path.read_text())
    typing_only = {
        id(n)
        for node in ast.walk(tree)
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
        for n in ast.walk(node)
    }
    found, strings = set(), []
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("auditkit"):
            for alias in node.names:
                found.add(_owner(f"{node.module}.{alias.name}") or node.module)
        elif isinstance(node, ast.Import):
            found |= {_owner(a.name) for a in node.names if a.name.startswith("auditkit")}
        elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith("import_module"):
            strings.append(ast.unparse(node))
    return {m for m in found if m}, strings


GRAPH = {name: _imports(path)[0] - {name} for name, path in MODULES.items()}


def _cycles() -> list[list[str]]:
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in GRAPH[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while (w := stack.pop()) != v:
                comp.append(w)
            if comp:
                out.append(sorted([v, *comp]))

    for v in GRAPH:
        if v not in index:
            visit(v)
    return out


def test_the_checker_sees_function_level_imports():
    assert "auditkit.sweep.run" in GRAPH["auditkit.cli.audit"]  # imported inside a command function


def test_no_import_cycles():
    assert _cycles() == []


def test_no_module_is_imported_by_a_string():
    assert {name: s for name, path in MODULES.items() if (s := _imports(path)[1])} == {}


# (layer, the layers it must not import): a lower layer never reaches up.
FORBIDDEN = {
    "auditkit.metrics": (
        "auditkit.methods",
        "auditkit.controls",
        "auditkit.audit",
        "auditkit.steering",
        "auditkit.calibration",
        "auditkit.report",
        "auditkit.cli",
    ),
    "auditkit.methods": (
        "auditkit.audit",
        "auditkit.steering",
        "auditkit.calibration",
        "auditkit.report",
        "auditkit.cli",
    ),
    "auditkit.controls": (
        "auditkit.methods",
        "auditkit.audit",
        "auditkit.steering",
        "auditkit.calibration",
        "auditkit.report",
        "auditkit.cli",
    ),
    "auditkit.steering": ("auditkit.audit", "auditkit.calibration", "auditkit.sweep", "auditkit.cli"),
    "auditkit.calibration": ("auditkit.steering", "auditkit.sweep", "auditkit.cli"),
    "auditkit.report": ("auditkit.cli", "auditkit.calibration.run", "auditkit.steering.run", "auditkit.sweep"),
    "auditkit.audit": ("auditkit.steering", "auditkit.calibration", "auditkit.sweep", "auditkit.cli"),
    "auditkit.sweep": ("auditkit.steering", "auditkit.calibration", "auditkit.cli"),
    "auditkit.trust": (
        "auditkit.audit",
        "auditkit.steering",
        "auditkit.calibration",
        "auditkit.sweep",
        "auditkit.report",
        "auditkit.cli",
    ),
}


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downwards(layer):
    bad = {
        name: sorted(t for t in targets if any(t == f or t.startswith(f + ".") for f in FORBIDDEN[layer]))
        for name, targets in GRAPH.items()
        if name == layer or name.startswith(layer + ".")
    }
    assert {k: v for k, v in bad.items() if v} == {}


def test_only_the_registry_reaches_from_the_audit_into_the_report():
    """Method runners never render: the registry names each method's section and figures, nothing else does."""
    reach = {
        n
        for n, targets in GRAPH.items()
        if n.startswith("auditkit.audit")
        for t in targets
        if t.startswith("auditkit.report")
    }
    assert reach <= {"auditkit.audit.registry"}


def test_ray_is_imported_by_the_ray_executor_alone():
    """The core install has no Ray: only ``sweep/ray_executor.py`` imports it, and only ``sweep/run.py`` imports that
    module, inside the function that picks the executor (``--executor ray``)."""
    importers = {}
    for name, path in MODULES.items():
        for node in ast.walk(ast.parse(path.read_text())):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            mods += [node.module] if isinstance(node, ast.ImportFrom) and node.module else []
            if any(m == "ray" or m.startswith("ray.") for m in mods):
                importers.setdefault(name, set()).add("ray")
    assert importers == {"auditkit.sweep.ray_executor": {"ray"}}
    users = sorted(name for name, targets in GRAPH.items() if "auditkit.sweep.ray_executor" in targets)
    assert users == ["auditkit.sweep.run"]
    run_tree = ast.parse(MODULES["auditkit.sweep.run"].read_text())
    top_level = [
        n for n in run_tree.body if isinstance(n, ast.ImportFrom) and n.module == "auditkit.sweep.ray_executor"
    ]
    assert top_level == []
