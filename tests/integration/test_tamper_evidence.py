"""The hash chain detects a flipped byte, a deleted event and two swapped events, and
names the first position that fails; signed checkpoints hold history to what it was."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from contract import commands as c
from services.application import Request, Verkosto
from services.audit.chain import backfill, verify
from services.audit.checkpoint import check, generate_key, sign
from services.settings import Settings

PARTNER = {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]}


def record(app: Verkosto, contacts: int) -> None:
    pid = uuid.uuid4()
    app.execute(
        [Request(c.OpenPartnership(partnership_id=pid, partner=PARTNER, owner_unit="u", steward="s"), "t", "api")]
    )  # type: ignore[arg-type]
    for _ in range(contacts):  # one transaction each, so links span transactions too
        app.execute(
            [
                Request(
                    c.LogContact(
                        type="contact_logged",
                        partnership_id=pid,
                        channel="call",
                        direction="inbound",
                        participants=("s",),
                    ),
                    "t",
                    "api",
                )
            ]
        )


def tamper(settings: Settings, statement: str) -> None:
    with psycopg.connect(settings.require_database_url(), autocommit=True) as conn:
        conn.execute(
            statement.replace("EVENTS", f'"{settings.db_schema}".verkosto_events').replace(
                "CHAIN", f'"{settings.db_schema}".event_chain'
            )
        )  # type: ignore[arg-type]


def verdict(settings: Settings) -> object:
    with psycopg.connect(settings.require_database_url()) as conn:
        return verify(conn, settings.db_schema)


FLIP = "UPDATE EVENTS SET state = overlay(state placing '\\x21'::bytea from 30 for 1) WHERE notification_id = 4"
DELETE = "DELETE FROM EVENTS WHERE notification_id = 5"
DELETE_BOTH = "DELETE FROM EVENTS WHERE notification_id = 5; DELETE FROM CHAIN WHERE position = 5"
SWAP = (
    "UPDATE EVENTS e SET state = o.state FROM EVENTS o WHERE (e.notification_id, o.notification_id) IN ((3, 6), (6, 3))"
)


@pytest.mark.parametrize(("statement", "first_bad"), [(FLIP, 4), (DELETE, 5), (DELETE_BOTH, 5), (SWAP, 3)])
def test_tampering_is_found_at_the_first_position_it_touches(
    app: Verkosto, settings: Settings, statement: str, first_bad: int
) -> None:
    record(app, 4)
    record(app, 3)
    before = verdict(settings)
    assert before.ok and before.checked == 9  # type: ignore[attr-defined]
    tamper(settings, statement)
    after = verdict(settings)
    assert not after.ok  # type: ignore[attr-defined]
    assert after.failed_at == first_bad, after  # type: ignore[attr-defined]
    assert after.checked == first_bad - 1  # type: ignore[attr-defined]


def test_events_recorded_before_the_chain_existed_are_chained_by_migration(app: Verkosto, settings: Settings) -> None:
    record(app, 2)
    tamper(settings, "DELETE FROM CHAIN")
    assert not verdict(settings).ok  # type: ignore[attr-defined]
    with psycopg.connect(settings.require_database_url()) as conn:
        assert backfill(conn, settings.db_schema) == 3
    assert verdict(settings).ok  # type: ignore[attr-defined]


def test_a_signed_checkpoint_catches_history_rewritten_and_re_chained(
    app: Verkosto, settings: Settings, tmp_path: Path
) -> None:
    record(app, 3)
    public = generate_key(tmp_path / "audit.key")
    with psycopg.connect(settings.require_database_url()) as conn:
        checkpoint = sign(verify(conn, settings.db_schema), tmp_path / "audit.key", datetime.now(UTC))
    record(app, 2)  # history goes on; the checkpoint still holds
    with psycopg.connect(settings.require_database_url()) as conn:
        assert check(conn, settings.db_schema, checkpoint, public)[0]
        forged = {**checkpoint, "position": checkpoint["position"] - 1}
        assert not check(conn, settings.db_schema, forged, public)[0]
    # Someone rewrites an early event and rebuilds the whole chain so it verifies again.
    tamper(settings, FLIP + "; DELETE FROM CHAIN")
    with psycopg.connect(settings.require_database_url()) as conn:
        backfill(conn, settings.db_schema)
        assert verify(conn, settings.db_schema).ok
        ok, message = check(conn, settings.db_schema, checkpoint, public)
    assert not ok and "no longer leads" in message


def test_the_cli_verifies_and_signs(app: Verkosto, settings: Settings, tmp_path: Path) -> None:
    record(app, 2)
    env = {
        "VERKOSTO_DATABASE_URL": settings.require_database_url(),
        "VERKOSTO_DB_SCHEMA": settings.db_schema,
        "PATH": "/usr/bin:/bin",
    }
    run: Callable[..., subprocess.CompletedProcess[str]] = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "services.cli", "--data-dir", str(tmp_path), "audit", *a],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run("keygen", "--key", str(tmp_path / "k.pem")).returncode == 0
    signed = run("checkpoint", "--key", str(tmp_path / "k.pem"), "--output", str(tmp_path / "cp.json"))
    assert signed.returncode == 0, signed.stderr
    assert json.loads((tmp_path / "cp.json").read_text())["position"] == 3
    ok = run("verify", "--checkpoint", str(tmp_path / "cp.json"), "--public-key", str(tmp_path / "k.pub"))
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stdout + ok.stderr
    tamper(settings, FLIP.replace("= 4", "= 2"))
    failed = run("verify")
    assert failed.returncode == 1 and "position 2" in failed.stdout
