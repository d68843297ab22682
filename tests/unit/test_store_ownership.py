"""One adapter owns the event store's SQL: no other module names its tables in a query,
no module guesses whether its rows are dicts or tuples, and projections get their
history from their caller rather than importing the services layer."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("services", "projections", "contract", "domain")
TABLES = re.compile(r"\b(verkosto_events|event_chain|subject_keys)\b")
# The adapter, and the recorder that extends eventsourcing's own inserts.
OWNERS = {"services/store.py", "services/eventstore.py"}
HEDGE = re.compile(r"isinstance\(\s*(row|r|head)\s*,\s*(dict|tuple)\s*\)")


def modules() -> Iterator[Path]:
    for package in PACKAGES:
        yield from sorted((ROOT / package).rglob("*.py"))


def _docstrings(tree: ast.AST) -> set[int]:
    """ids of the string constants that are docstrings (prose, not queries)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def tables_named(source: str) -> list[tuple[int, str]]:
    """(line, table) for every string in the code (f-strings included, docstrings not)
    that names one of the event store's tables."""
    tree = ast.parse(source)
    prose = _docstrings(tree)
    return [
        (node.lineno, match.group(1))
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in prose
        for match in TABLES.finditer(node.value)
    ]


def test_only_the_adapter_queries_the_event_stores_tables() -> None:
    offences = [
        f"{path.relative_to(ROOT)}:{line} {table}"
        for path in modules()
        if path.relative_to(ROOT).as_posix() not in OWNERS
        for line, table in tables_named(path.read_text())
    ]
    assert not offences, "query these through services/store.py: " + ", ".join(offences)


def test_the_adapter_does_own_them() -> None:
    assert {table for _, table in tables_named((ROOT / "services/store.py").read_text())} == {
        "verkosto_events",
        "event_chain",
        "subject_keys",
    }


def test_the_check_itself_catches_a_query_but_not_a_metric_or_a_docstring() -> None:
    sample = '''
"""Reads verkosto_events (prose)."""
rows = conn.execute(f'SELECT count(*) FROM "{schema}".verkosto_events')
more = sql.SQL("DELETE FROM {}.subject_keys")
name = "verkosto_events_appended"
'''
    assert sorted(tables_named(sample)) == [(3, "verkosto_events"), (4, "subject_keys")]


def test_services_never_guess_the_row_factory() -> None:
    offences = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in sorted((ROOT / "services").rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if HEDGE.search(line)
    ]
    assert not offences, "rows are dicts (dict_row) everywhere: " + ", ".join(offences)


def test_projections_import_nothing_from_services() -> None:
    offences = []
    for path in sorted((ROOT / "projections").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else ([node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
            )
            offences += [f"{path.name}:{node.lineno} {n}" for n in names if n.split(".")[0] == "services"]
    assert not offences
