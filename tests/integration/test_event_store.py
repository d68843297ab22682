"""The application on real PostgreSQL: idempotency, conflicts and bulk decisions."""

from __future__ import annotations

import threading
import uuid

import psycopg

from contract import commands as c
from domain.partnership import Partnership
from services.application import Accepted, ConcurrentWrite, Rejected, Request, Verkosto
from services.db import open_application
from services.settings import Settings

PARTNER = {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]}


def open_cmd(**extra: object) -> c.OpenPartnership:
    return c.OpenPartnership(partner=PARTNER, owner_unit="research", steward="alice", **extra)  # type: ignore[arg-type]


def contact(pid: uuid.UUID, **extra: object) -> c.LogContact:
    return c.LogContact(
        type="contact_logged",
        partnership_id=pid,
        channel="call",
        direction="inbound",
        participants=("alice",),
        **extra,  # type: ignore[arg-type]
    )


def as_api(*commands: c.Command) -> list[Request]:
    return [Request(cmd, actor="tester", source="api") for cmd in commands]


def test_a_repeated_command_id_records_once_and_returns_the_first_result(app: Verkosto) -> None:
    (first,) = app.execute(as_api(open_cmd(command_id="crm-1")))
    (again,) = app.execute(as_api(open_cmd(command_id="crm-1")))
    assert isinstance(first, Accepted) and isinstance(again, Accepted)
    assert (again.aggregate_id, again.version, again.position) == (
        first.aggregate_id,
        first.version,
        first.position,
    )
    assert again.duplicate and not first.duplicate
    assert app.recorder.max_notification_id() == 1


def test_a_command_id_repeated_within_one_batch_records_once(app: Verkosto) -> None:
    (opened,) = app.execute(as_api(open_cmd()))
    assert isinstance(opened, Accepted)
    outcomes = app.execute(as_api(*(contact(opened.aggregate_id, command_id="cal-7") for _ in range(3))))
    assert [o.duplicate for o in outcomes] == [False, True, True]  # type: ignore[union-attr]
    assert len({o.position for o in outcomes}) == 1  # type: ignore[union-attr]
    assert app.get(opened.aggregate_id, Partnership).contacts == 1


def test_rejections_leave_the_rest_of_the_batch_recorded(app: Verkosto) -> None:
    (opened,) = app.execute(as_api(open_cmd()))
    pid = opened.aggregate_id  # type: ignore[union-attr]
    outcomes = app.execute(
        as_api(
            contact(pid),
            c.ChangeStage(type="stage_changed", partnership_id=pid, stage="manage", reason="eager"),
            contact(uuid.uuid4()),
            contact(pid),
        )
    )
    kinds = [(type(o).__name__, getattr(o, "code", None)) for o in outcomes]
    assert kinds == [
        ("Accepted", None),
        ("Rejected", "illegal_stage_transition"),
        ("Rejected", "not_found"),
        ("Accepted", None),
    ]
    assert app.get(pid, Partnership).version == 3


def test_expected_version_conflict_is_rejected(app: Verkosto) -> None:
    (opened,) = app.execute(as_api(open_cmd()))
    pid = opened.aggregate_id  # type: ignore[union-attr]
    app.execute(as_api(contact(pid, expected_version=1)))
    (stale,) = app.execute(as_api(contact(pid, expected_version=1)))
    assert isinstance(stale, Rejected)
    assert (stale.code, stale.details["actual_version"]) == ("version_conflict", 2)


def test_a_concurrent_writer_forces_a_fresh_decision(app: Verkosto, settings: Settings) -> None:
    (opened,) = app.execute(as_api(open_cmd()))
    pid = opened.aggregate_id  # type: ignore[union-attr]
    other = open_application(settings.require_database_url(), settings.db_schema)
    try:
        mine = app.decide(as_api(contact(pid)))
        theirs = other.decide(as_api(contact(pid)))
        other.commit(theirs)
        try:
            app.commit(mine)
        except ConcurrentWrite:
            pass
        else:
            raise AssertionError("the second commit at the same version must fail")
        (retried,) = app.execute(as_api(contact(pid)))
        assert isinstance(retried, Accepted) and retried.version == 3
    finally:
        other.close()


def test_parallel_writers_lose_nothing(app: Verkosto, settings: Settings) -> None:
    (opened,) = app.execute(as_api(open_cmd()))
    pid = opened.aggregate_id  # type: ignore[union-attr]

    def write(n: int) -> None:
        writer = open_application(settings.require_database_url(), settings.db_schema)
        try:
            for _ in range(n):
                (outcome,) = writer.execute(as_api(contact(pid)), attempts=50)
                assert isinstance(outcome, Accepted)
        finally:
            writer.close()

    threads = [threading.Thread(target=write, args=(15,)) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert app.get(pid, Partnership).contacts == 45


def test_history_lists_every_event_with_both_times_and_the_actor(app: Verkosto) -> None:
    (opened,) = app.execute(as_api(open_cmd(command_id="x")))
    pid = opened.aggregate_id  # type: ignore[union-attr]
    app.execute([Request(contact(pid, on_behalf_of="bea"), actor="calendar", source="kafka")])
    history = app.history(pid, Partnership)
    assert [(e["type"], e["version"], e["actor"], e["source"]) for e in history] == [
        ("partnership_opened", 1, "tester", "api"),
        ("contact_logged", 2, "calendar", "kafka"),
    ]
    assert history[1]["on_behalf_of"] == "bea" and history[0]["command_id"] == "x"
    assert history[1]["data"]["participants"] == ["alice"]
    assert all(e["occurred_at"] and e["recorded_at"] for e in history)


def test_stored_events_are_json_anyone_can_read(app: Verkosto, settings: Settings) -> None:
    app.execute(as_api(open_cmd()))
    with psycopg.connect(settings.require_database_url()) as conn:
        (state,) = conn.execute(
            f"SELECT convert_from(state, 'UTF8')::jsonb ->> 'owner_unit' FROM \"{settings.db_schema}\".verkosto_events"
        ).fetchone()  # type: ignore[misc]
    assert state == "research"


def test_outcomes_are_counted_with_their_effect(app: Verkosto, settings: Settings) -> None:
    (opened,) = app.execute(as_api(open_cmd(command_id="o-1")))
    pid = opened.aggregate_id  # type: ignore[union-attr]
    app.execute(as_api(open_cmd(command_id="o-1"), contact(pid), contact(uuid.uuid4())))
    app.execute([Request(contact(pid), "calendar", "kafka")])
    with psycopg.connect(settings.require_database_url()) as conn:
        rows = conn.execute(
            f'SELECT source, outcome, reason, count FROM "{settings.db_schema}".command_outcomes ORDER BY 1, 2, 3'
        ).fetchall()
    assert rows == [
        ("api", "accepted", "", 2),
        ("api", "duplicate", "", 1),
        ("api", "rejected", "not_found", 1),
        ("kafka", "accepted", "", 1),
    ]
