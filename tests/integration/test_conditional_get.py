"""Conditional GET on the projection reads, on the real API and real PostgreSQL: an ETag on
every answer, 304 without a body when the asker's copy is current, and no work done for a
read that names its moment (services/api/conditional.py)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from contract import commands as c
from projections.catalog import all_projections
from projections.rebuild import rebuild_sync
from services.api import projections as routes
from services.api.app import create_app
from services.api.freshness import await_position
from services.application import Request, Verkosto
from services.auth import issue_token
from services.db import connect
from services.replay import StoreHistory
from services.settings import Settings

AS_OF = "2030-01-01T00:00:00Z"
READS = ("/v1/projections/lifecycle", "/v1/projections/portfolio", "/v1/projections/networks", "/v1/network-plan")


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        token = issue_token(conn, settings.db_schema, "viewer", ["dashboards:read"])
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client


def open_partnership(app: Verkosto, name: str) -> None:
    partner = {"name": name, "kind": "organisation", "roles": ["customer"]}
    app.execute(
        [
            Request(
                c.OpenPartnership(
                    partnership_id=uuid.uuid4(),
                    partner=partner,
                    owner_unit="u",
                    steward="s",
                    occurred_at=datetime(2025, 1, 1, tzinfo=UTC),
                ),
                "crm",
                "api",
            )
        ]
    )


def rebuild(settings: Settings) -> None:
    """Brings every read model up to the event store (a new active version each)."""
    url = settings.require_database_url()
    for projection in all_projections():
        with StoreHistory(url, settings.db_schema) as history:
            rebuild_sync(url, settings.db_schema, projection, lambda *_: None, keep_previous=False, source=history)


def test_a_read_that_names_its_moment_is_answered_304_before_any_work(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for path in READS:
        first = client.get(path, params={"as_of": AS_OF})
        assert first.status_code == 200, first.text
        etag = first.headers["etag"]
        assert etag.startswith('W/"p-') and "no-cache" in first.headers["cache-control"]
        again = client.get(path, params={"as_of": AS_OF}, headers={"If-None-Match": etag})
        assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
        assert (
            client.get(path, params={"as_of": AS_OF, "wait_ms": 5}, headers={"If-None-Match": etag}).status_code == 304
        )
        # Another moment is another answer.
        other = client.get(path, params={"as_of": "2031-01-01T00:00:00Z"}, headers={"If-None-Match": etag})
        assert other.status_code == 200 and other.headers["etag"] != etag
    # The 304 is decided before the route starts (every route first waits for its position).
    calls: list[object] = []
    real = await_position

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(routes, "await_position", counted)
    etag = client.get(READS[0], params={"as_of": AS_OF}).headers["etag"]
    assert len(calls) == 1
    assert client.get(READS[0], params={"as_of": AS_OF}, headers={"If-None-Match": etag}).status_code == 304
    assert len(calls) == 1


def test_markdown_and_json_of_the_plan_have_their_own_tags(client: TestClient) -> None:
    json_tag = client.get("/v1/network-plan", params={"as_of": AS_OF}).headers["etag"]
    markdown = client.get("/v1/network-plan", params={"as_of": AS_OF}, headers={"Accept": "text/markdown"})
    assert markdown.status_code == 200 and markdown.headers["etag"] != json_tag
    assert markdown.headers["vary"] == "Accept"
    asked = {"Accept": "text/markdown", "If-None-Match": json_tag}
    assert client.get("/v1/network-plan", params={"as_of": AS_OF}, headers=asked).status_code == 200


def test_a_read_as_of_now_is_tagged_by_its_content_less_the_moment(client: TestClient) -> None:
    for path in READS[:3]:
        first = client.get(path)
        etag = first.headers["etag"]
        assert first.status_code == 200 and etag.startswith('W/"b-')
        again = client.get(path, headers={"If-None-Match": f'"x", {etag}'})
        assert again.status_code == 304 and again.content == b""
    # Waiting for a position never takes the shortcut: the answer is computed and compared.
    waited = client.get(READS[0], params={"as_of": AS_OF, "min_position": 0})
    assert waited.status_code == 200 and waited.headers["etag"].startswith('W/"b-')


def test_a_change_in_the_read_models_is_a_new_answer(client: TestClient, app: Verkosto, settings: Settings) -> None:
    dated = {path: client.get(path, params={"as_of": AS_OF}) for path in READS}
    now = {path: client.get(path) for path in READS[:2]}
    open_partnership(app, "Fresh Oy")
    rebuild(settings)
    for path, before in dated.items():
        after = client.get(path, params={"as_of": AS_OF}, headers={"If-None-Match": before.headers["etag"]})
        assert after.status_code == 200 and after.headers["etag"] != before.headers["etag"], path
    lifecycle = client.get(READS[0], headers={"If-None-Match": now[READS[0]].headers["etag"]})
    assert lifecycle.status_code == 200 and "Fresh Oy" in lifecycle.text


def test_a_tag_is_no_way_around_authentication(client: TestClient) -> None:
    etag = client.get(READS[0], params={"as_of": AS_OF}).headers["etag"]
    anonymous = client.get(
        READS[0], params={"as_of": AS_OF}, headers={"If-None-Match": etag, "Authorization": "Bearer vk_nothing"}
    )
    assert anonymous.status_code == 401
    # Errors carry no tag to revalidate against.
    assert "etag" not in client.get("/v1/projections/trust/not-a-uuid").headers


def test_me_is_the_asker_so_two_people_never_share_a_tag(settings: Settings) -> None:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        tokens = [issue_token(conn, settings.db_schema, n, ["dashboards:read"], person=n) for n in ("aino", "oona")]
    tags = []
    with TestClient(create_app(settings)) as client:
        for token in tokens:
            answer = client.get(
                "/v1/projections/lifecycle",
                params={"steward": "me", "as_of": AS_OF},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 200, answer.text
            tags.append(answer.headers["etag"])
        again = client.get(
            "/v1/projections/lifecycle",
            params={"steward": "me", "as_of": AS_OF},
            headers={"Authorization": f"Bearer {tokens[1]}", "If-None-Match": tags[0]},
        )
    assert tags[0] != tags[1] and again.status_code == 200  # Aino's copy is not Oona's answer
