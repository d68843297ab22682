"""Snapshots and the aggregate cache change no answer: state loaded through them equals a
full replay (erased subjects included), two writer processes stay correct, and history
pages concatenate to the whole history."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from contract import commands as c
from domain.base import Aggregate
from domain.history import partnership_then
from domain.partnership import Partnership
from services import history_checkpoints
from services.api.app import create_app
from services.application import ConcurrentWrite, Request, Verkosto
from services.auth import issue_token
from services.db import open_application
from services.privacy import erase
from services.settings import Settings

T0 = datetime(2025, 1, 1, 9, 0, tzinfo=UTC)
PEOPLE = ["Aino Aalto", "Bertta Berg", "Cecilia Cruz"]


def at(days: int) -> datetime:
    return T0 + timedelta(days=days)


def request(command: c.Command) -> Request:
    return Request(command, actor="tester", source="api")


def opening(pid: uuid.UUID, partner_kind: str = "person") -> Any:
    return c.OpenPartnership(
        partnership_id=pid,
        partner={"name": "Pirkko Partneri", "kind": partner_kind, "roles": ["user"]},
        owner_unit="research",
        steward=PEOPLE[0],
        occurred_at=T0,
    )


def contact(pid: uuid.UUID, days: int, participants: tuple[str, ...] = ("Aino Aalto",)) -> Any:
    return c.LogContact(
        type="contact_logged",
        partnership_id=pid,
        channel="call",
        direction="inbound",
        participants=participants,
        summary="talked",
        occurred_at=at(days),
    )


def replayed(app: Verkosto, aggregate_id: uuid.UUID) -> Any:
    aggregate = None
    for event in app.domain_events(aggregate_id):
        aggregate = event.mutate(aggregate)
    return aggregate


def state(aggregate: Aggregate) -> dict[str, Any]:
    return dict(vars(aggregate))


@pytest.fixture
def cold(settings: Settings) -> Iterator[Verkosto]:
    """A second application on the same store: another writer process."""
    other = open_application(settings.require_database_url(), settings.db_schema)
    try:
        yield other
    finally:
        other.close()


OPS = st.one_of(
    st.tuples(st.just("contact"), st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=2), st.integers(0, 60)),
    st.tuples(st.just("transfer"), st.sampled_from(PEOPLE), st.integers(0, 60)),
    st.tuples(st.just("interest"), st.integers(1, 3), st.integers(0, 60)),
    st.tuples(st.just("roles"), st.sampled_from([["user"], ["customer"], ["user", "customer"]]), st.integers(0, 60)),
    st.tuples(st.just("erase"), st.sampled_from([*PEOPLE, "partner"]), st.just(0)),
    st.tuples(st.just("other_writer"), st.just(""), st.integers(0, 60)),
)


def command_for(pid: uuid.UUID, op: tuple[str, Any, int]) -> Any:
    kind, value, days = op
    if kind == "contact":
        return contact(pid, days, tuple(dict.fromkeys(value)))
    if kind == "transfer":
        return c.TransferOwnership(
            type="ownership_transferred",
            partnership_id=pid,
            owner_unit="research",
            steward=value,
            reason="steward_left",
            occurred_at=at(days),
        )
    if kind == "interest":
        return c.SignalInterest(
            type="interest_signalled", partnership_id=pid, direction="inbound", strength=value, occurred_at=at(days)
        )
    return c.ChangeRoles(type="roles_changed", partnership_id=pid, roles=value, occurred_at=at(days))


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(OPS, min_size=1, max_size=25),
    every=st.integers(1, 6),
    partner_kind=st.sampled_from(["person", "organisation"]),
)
def test_state_through_snapshots_and_the_cache_equals_a_full_replay(
    app: Verkosto, cold: Verkosto, settings: Settings, ops: list[Any], every: int, partner_kind: str
) -> None:
    app.snapshot_every = cold.snapshot_every = every
    pid = uuid.uuid4()
    app.execute([request(opening(pid, partner_kind))])
    app.get(pid, Partnership)  # cached from now on
    for op in ops:
        if op[0] == "erase":
            subject = f"partnership:{pid}" if op[1] == "partner" else f"person:{op[1]}"
            erase(settings.require_database_url(), settings.db_schema, subject)
        elif op[0] == "other_writer":
            cold.execute([request(contact(pid, op[2], (PEOPLE[1],)))])  # behind app's cache
        else:
            app.execute([request(command_for(pid, op))])
    hot = app.get(pid, Partnership)  # the cache, plus what the other writer added
    cold.cache.clear()
    from_snapshot = cold.get(pid, Partnership)  # the latest snapshot plus the events after it
    full = replayed(app, pid)
    assert state(hot) == state(full)
    assert state(from_snapshot) == state(full)
    # Snapshots were written, and none holds an erased person in plaintext.
    with psycopg.connect(settings.require_database_url()) as conn:
        rows = conn.execute(
            f'SELECT originator_version, state FROM "{settings.db_schema}".aggregate_snapshots '
            "WHERE originator_id = %s",
            (pid,),
        ).fetchall()
    if full.version >= every:
        assert rows and rows[0][0] <= full.version
    # A partner's name is personal only when the partner is a person.
    personal = [*PEOPLE, *(["Pirkko Partneri"] if partner_kind == "person" else [])]
    for _, stored in rows:
        assert not any(name.encode() in bytes(stored) for name in personal)


def test_a_writer_that_lost_a_race_decides_again_on_fresh_state(app: Verkosto, cold: Verkosto) -> None:
    pid = uuid.uuid4()
    app.execute([request(opening(pid))])
    cold.get(pid, Partnership)  # both processes now cache version 1
    decision = cold.decide([request(contact(pid, 1))])  # decided on version 1 ...
    app.execute([request(contact(pid, 2))])  # ... while the other process wrote version 2
    with pytest.raises(ConcurrentWrite):
        cold.commit(decision)
    # The failed decision left nothing half-applied in the cache: a reload sees version 2.
    assert cold.get(pid, Partnership).version == 2
    (outcome,) = cold.execute([request(contact(pid, 3))])
    assert outcome.version == 3  # type: ignore[union-attr]
    assert app.get(pid, Partnership).contacts == cold.get(pid, Partnership).contacts == 2
    assert state(app.get(pid, Partnership)) == state(replayed(app, pid))


def test_a_decision_mutates_a_copy_not_the_cached_aggregate(app: Verkosto) -> None:
    pid = uuid.uuid4()
    app.execute([request(opening(pid))])
    app.decide([request(contact(pid, 1))])  # decided, never committed
    assert app.get(pid, Partnership).version == 1
    assert app.get(pid, Partnership).contacts == 0


def test_history_pages_concatenate_to_the_whole_history(app: Verkosto) -> None:
    pid = uuid.uuid4()
    app.execute([request(opening(pid))])
    other = uuid.uuid4()
    app.execute([request(opening(other))])
    for day in range(1, 12):
        app.execute([request(contact(pid, day)), request(contact(other, day))])
    whole = app.history(pid, Partnership)
    assert len(whole) == 12
    pages, after = [], 0
    while True:
        page = app.history(pid, Partnership, after=after, limit=5)
        pages += page
        if len(page) < 5:
            break
        after = page[-1]["position"]
    assert pages == whole
    in_range = app.history(pid, Partnership, occurred_from=at(3), occurred_to=at(6))
    assert [e["occurred_at"] for e in in_range] == [e["occurred_at"] for e in whole if at(3) <= _when(e) < at(6)]
    assert len(in_range) == 3


def _when(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(str(event["occurred_at"]))


MOMENTS = st.tuples(st.integers(-1, 62), st.integers(0, 30))  # (as_of day, known_at step)


@hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    ops=st.lists(OPS, min_size=1, max_size=25),
    every=st.integers(1, 5),
    questions=st.lists(MOMENTS, min_size=1, max_size=6),
)
def test_as_of_known_at_from_checkpoints_equals_the_full_fold(
    app: Verkosto, settings: Settings, ops: list[Any], every: int, questions: list[tuple[int, int]]
) -> None:
    app.snapshot_every = every
    recorded = [T0 + timedelta(days=100)]

    def clock() -> datetime:
        recorded[0] += timedelta(hours=1)  # each command recorded an hour after the last
        return recorded[0]

    app.clock = clock
    pid = uuid.uuid4()
    app.execute([request(opening(pid))])
    for step, op in enumerate(ops):
        if op[0] == "erase":
            subject = f"partnership:{pid}" if op[1] == "partner" else f"person:{op[1]}"
            erase(settings.require_database_url(), settings.db_schema, subject)
        elif op[0] != "other_writer":
            app.execute([request(command_for(pid, op))])  # occurred_at back-dated at random
        if step % 4 == 0:  # ask now and then, so checkpoints are written along the way
            history_checkpoints.state_then(app, pid, Partnership, partnership_then, at(61), recorded[0])
    events = app.domain_events(pid)
    for as_of_day, known_step in questions:
        as_of, known_at = at(as_of_day), T0 + timedelta(days=100, hours=known_step)
        expected = partnership_then(events, as_of, known_at)
        assert history_checkpoints.state_then(app, pid, Partnership, partnership_then, as_of, known_at) == expected
    with psycopg.connect(settings.require_database_url()) as conn:
        views = conn.execute(
            f'SELECT view FROM "{settings.db_schema}".history_checkpoints WHERE originator_id = %s', (pid,)
        ).fetchall()
    for (view,) in views:
        assert not any(name.encode() in bytes(view) for name in [*PEOPLE, "Pirkko Partneri"])


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        token = issue_token(conn, settings.db_schema, "integrator", ["admin"])
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client


def test_the_history_endpoint_pages_with_a_cursor_and_an_occurred_range(client: TestClient) -> None:
    pid = client.post(
        "/v1/partnerships",
        json={
            "partner": {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]},
            "owner_unit": "research",
            "steward": "alice",
            "occurred_at": T0.isoformat(),
        },
    ).json()["id"]
    for day in range(1, 8):
        body = {"type": "contact_logged", "channel": "call", "direction": "inbound", "participants": ["alice"]}
        assert client.post(
            f"/v1/partnerships/{pid}/events", json={**body, "occurred_at": at(day).isoformat()}
        ).is_success
    whole = client.get(f"/v1/partnerships/{pid}/history").json()
    assert len(whole["events"]) == 8 and whole["next_cursor"] is None
    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        page = client.get(f"/v1/partnerships/{pid}/history", params=params).json()
        pages += page["events"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert len(page["events"]) == 3
    assert pages == whole["events"]
    ranged = client.get(
        f"/v1/partnerships/{pid}/history", params={"from": at(2).isoformat(), "to": at(5).isoformat()}
    ).json()
    assert [e["version"] for e in ranged["events"]] == [3, 4, 5]
    for bad in ({"limit": 0}, {"limit": 5001}, {"cursor": "not-a-cursor"}):
        assert client.get(f"/v1/partnerships/{pid}/history", params=bad).status_code == 422
    state = client.get(f"/v1/partnerships/{pid}", params={"as_of": at(3).isoformat()}).json()
    assert state["contacts"] == 3
    missing = uuid.uuid4()
    assert client.get(f"/v1/partnerships/{missing}/owners").status_code == 404
    assert client.get(f"/v1/partnerships/{missing}/history").status_code == 404
    assert client.get(f"/v1/networks/{pid}/history").status_code == 404  # a partnership is no network
