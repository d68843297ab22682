"""Refusal codes become HTTP statuses in one place, services/api/problems.py."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import domain.errors
from domain.errors import DomainError
from services import application
from services.api.problems import DEFAULT_REFUSAL, REFUSALS, install, not_found, refusal_status, refused
from services.application import NotFound

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ROOT / "services"
HTTP_ERROR_STATUSES = {400, 401, 403, 404, 405, 409, 410, 413, 422, 429, 500, 502, 503, 504}


def every_subclass(cls: type[DomainError]) -> set[type[DomainError]]:
    found: set[type[DomainError]] = set()
    for sub in cls.__subclasses__():
        found |= {sub, *every_subclass(sub)}
    return found


def test_every_domain_error_code_has_a_status() -> None:
    import services.application  # noqa: F401  (its own DomainErrors: not_found, already_exists)

    errors: set[type[DomainError]] = {DomainError, *every_subclass(DomainError)}
    assert {e.__module__ for e in errors} >= {"domain.errors", "services.application"}
    missing = sorted(e.code for e in errors if e.code not in REFUSALS)
    assert not missing


def test_every_code_the_application_refuses_with_has_a_status() -> None:
    source = Path(application.__file__).read_text()
    codes = {
        node.args[0].value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.Call)
        and getattr(node.func, "id", None) == "Rejected"
        and node.args
        and isinstance(node.args[0], ast.Constant)
    }
    assert codes == {"concurrent_write", "invalid_command"}
    assert codes <= REFUSALS.keys()


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("not_found", 404),
        ("invalid_command", 422),
        ("version_conflict", 409),
        ("concurrent_write", 409),
        ("already_exists", 409),
        ("aggregate_ended", 409),
        ("illegal_stage_transition", 409),
        ("invalid_outcome_factor", 409),
        ("occurred_before_start", 409),
        ("occurred_in_future", 409),
        ("nothing_changed", 409),
        ("membership", 409),
        ("stage_out_of_order", 409),
    ],
)
def test_the_documented_statuses(code: str, status: int) -> None:
    assert refusal_status(code)[0] == status


def test_an_unlisted_code_is_a_domain_rule() -> None:
    assert refusal_status("some_new_rule") == DEFAULT_REFUSAL == (409, DEFAULT_REFUSAL[1])


def test_a_refusal_keeps_its_details_and_an_unrecordable_command_names_the_body() -> None:
    conflict = refused("version_conflict", "stale", {"actual_version": 2})
    assert (conflict.status, conflict.code, conflict.detail, conflict.extra) == (
        409,
        "version_conflict",
        "stale",
        {"actual_version": 2},
    )
    invalid = refused("invalid_command", "actor: too long")
    assert invalid.status == 422
    assert invalid.extra["errors"] == [{"field": "body", "message": "actor: too long", "type": "invalid_command"}]
    gone = not_found("network", "no network x")
    assert (gone.status, gone.code, gone.title) == (404, "not_found", "Unknown network")


def test_the_applications_not_found_is_a_404_problem_without_a_try_in_the_route() -> None:
    app = FastAPI()
    install(app)

    @app.get("/partnerships/{pid}")
    def missing(pid: str) -> None:
        raise NotFound(f"no partnership {pid}", "partnership")

    answer = TestClient(app).get("/partnerships/p1")
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json() == {
        "type": "/problems/not_found",
        "title": "Unknown partnership",
        "status": 404,
        "code": "not_found",
        "instance": "/partnerships/p1",
        "detail": "no partnership p1",
    }


def http_statuses(path: Path) -> list[str]:
    """Integer literals that look like HTTP error statuses, and ``status=`` keywords."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Constant) and type(node.value) is int and node.value in HTTP_ERROR_STATUSES:
            found.append(f"{path.name}:{node.lineno} {node.value}")
        elif isinstance(node, ast.keyword) and node.arg in {"status", "status_code"}:
            found.append(f"{path.name}:{node.lineno} {node.arg}=")
        elif isinstance(node, ast.Attribute) and node.attr in {"status", "status_code"}:
            found.append(f"{path.name}:{node.lineno} .{node.attr}")
    return found


@pytest.mark.parametrize("name", ["application.py", "ingest.py"])
def test_the_application_and_the_kafka_door_know_nothing_of_http(name: str) -> None:
    assert not http_statuses(SERVICES / name)


def test_the_check_itself_catches_a_status(tmp_path: Path) -> None:
    sample = tmp_path / "bad.py"
    sample.write_text("x = Rejected('a', 'b', 409)\ny = Rejected('a', 'b', status=422)\nz = r.status\n")
    assert len(http_statuses(sample)) == 4


def test_the_domain_errors_module_is_all_covered() -> None:
    codes = {
        getattr(domain.errors, n).code
        for n in dir(domain.errors)
        if isinstance(getattr(domain.errors, n), type) and issubclass(getattr(domain.errors, n), DomainError)
    }
    assert codes <= REFUSALS.keys()
