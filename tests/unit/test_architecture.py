"""The domain stays pure: no infrastructure, no outer layers, no clock reads."""

from __future__ import annotations

import ast
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "domain"
FORBIDDEN_PREFIXES = (
    "services",
    "projections",
    "psycopg",
    "kafka",
    "faust",
    "aiokafka",
    "fastapi",
    "starlette",
    "uvicorn",
    "eventsourcing.postgres",
    "eventsourcing.sqlite",
    "eventsourcing.system",
    "eventsourcing.application",
    "socket",
    "requests",
    "httpx",
)


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
    return found


def test_domain_imports_nothing_from_outer_layers_or_infrastructure() -> None:
    offences = {
        f"{path.name}: {module}"
        for path in DOMAIN.glob("*.py")
        for module in imported_modules(path)
        if module.startswith(FORBIDDEN_PREFIXES)
    }
    assert not offences


def test_domain_never_reads_the_clock() -> None:
    calls = {"now", "utcnow", "today", "time", "monotonic"}
    offences = []
    for path in DOMAIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
                if node.func.attr in calls:
                    offences.append(f"{path.name}:{node.lineno} {node.func.attr}()")
    assert not offences


def test_events_are_stamped_with_the_commands_time_not_the_wall_clock() -> None:
    from tests.unit.builders import T0, meta, opened

    p = opened()
    p.log_contact("call", "inbound", ("alice",), meta(3, recorded_days=4))
    (event,) = p.collect_events()
    assert event.timestamp == event.meta.recorded_at == T0.replace(day=5)


def test_the_check_itself_catches_a_forbidden_import(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("from psycopg import sql\nimport kafka.errors\n")
    assert {"psycopg", "kafka.errors"} <= imported_modules(sample)
