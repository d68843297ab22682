"""Layers you can draw: each package imports only from an allow-list, and no project
module imports itself round a cycle (imports inside functions count too).

    domain  <-  contract  <-  projections  <-  services (the outer layer, composition root)
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = ("domain", "contract", "projections", "services")
# Besides the standard library: what each package may import.
ALLOWED = {
    "domain": {"domain", "pydantic", "eventsourcing.domain"},
    "contract": {"contract", "domain", "pydantic"},
    "projections": {"projections", "contract", "domain", "psycopg", "faust", "pydantic"},
}


def modules() -> dict[str, Path]:
    found = {}
    for package in PROJECT:
        for path in (ROOT / package).rglob("*.py"):
            name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found[name.removesuffix(".__init__")] = path
    return found


def imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def allowed(package: str, name: str) -> bool:
    top = name.split(".")[0]
    if top in sys.stdlib_module_names or top == "__future__":
        return True
    return any(name == a or name.startswith(a + ".") for a in ALLOWED[package])


def offences(package: str, paths: dict[str, Path]) -> list[str]:
    return sorted(
        f"{module}: {name}"
        for module, path in paths.items()
        if module.split(".")[0] == package
        for name in imports(path)
        if not allowed(package, name)
    )


def test_each_inner_package_imports_only_what_its_layer_allows() -> None:
    paths = modules()
    for package in ALLOWED:
        assert not offences(package, paths), package


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components larger than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_round_a_cycle() -> None:
    paths = modules()
    graph = {module: {name for name in imports(path) if name in paths} - {module} for module, path in paths.items()}
    assert cycles(graph) == []


def test_the_checks_catch_a_forbidden_import_and_a_cycle() -> None:
    assert not allowed("projections", "services.settings")
    assert not allowed("domain", "psycopg")
    assert allowed("contract", "domain.values") and allowed("domain", "json")
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == [["a", "b", "c"]]
