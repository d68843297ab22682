"""The stewardship report (what a steward held, what followed each departure) answered
from the lifecycle rows equals the same report folded from the published events."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import psycopg

from contract.events import Published
from projections.lifecycle import fold_all
from projections.queries.ownership import tenures
from projections.queries.stewardship import handovers, held_by
from projections.registry import active_schema
from services.application import Verkosto
from services.settings import Settings
from tests.integration.test_board import BACK_DATED_TO, NOW, START, build
from tests.integration.test_projections_fold import apply_all, deliver_like_a_bus, published


def expected_handover(doc: dict[str, Any], since: datetime) -> dict[str, Any]:
    """What followed a handover at ``since``, from the partnership's folded document."""
    contacts = sorted(at for at, _ in doc["contacts"] if datetime.fromisoformat(at) >= since)
    moves = [t for t in doc["transitions"] if datetime.fromisoformat(t[0]) >= since]
    return {
        "partner_name": doc["partner_name"],
        "contacts_since": len(contacts),
        "first_contact_since": contacts[0] if contacts else None,
        "stage_moves_since": [{"at": at, "from": prev, "to": to, "reason": why} for at, prev, to, why, _ in moves],
    }


def test_the_stewardship_report_from_rows_equals_the_fold(app: Verkosto, settings: Settings) -> None:
    build(app)
    events = published(app)
    apply_all(settings, deliver_like_a_bus(events, seed=7))
    docs = fold_all(Published.of(event) for event in events)
    with psycopg.connect(settings.require_database_url()) as conn:
        ownership = active_schema(conn, settings.db_schema, "ownership")
        lifecycle = active_schema(conn, settings.db_schema, "lifecycle")
        report = handovers(conn, ownership, lifecycle)
        assert len(report) >= 6  # the demo's leavers and the back-dated departures
        assert any(r["contacts_since"] for r in report) and any(r["stage_moves_since"] for r in report)
        for row in report:
            pid = str(row["partnership_id"])
            got = {key: row[key] for key in ("partner_name", "contacts_since", "first_contact_since")}
            got["stage_moves_since"] = row["stage_moves_since"]
            assert got == expected_handover(docs[pid], row["handed_over_at"]), pid
            (tenure,) = [
                t for t in tenures(conn, ownership, row["partnership_id"]) if t["valid_from"] == row["handed_over_at"]
            ]
            assert (tenure["steward"], tenure["reason"]) == (row["successor"], "steward_left")
        held_any = 0
        for at in (START + timedelta(days=400), BACK_DATED_TO + timedelta(days=5), NOW):
            for steward in ("Oona", "Ronja", *sorted({d["tenures"][0][2] for d in docs.values()})[:3]):
                held = held_by(conn, ownership, lifecycle, steward, at, None)
                assert [r["partner_name"] for r in held] == [
                    docs[str(r["partnership_id"])]["partner_name"] for r in held
                ]
                moment = at.isoformat()
                holding = {
                    pid
                    for pid, doc in docs.items()
                    if doc["opened_at"] <= moment
                    and [t for t in doc["tenures"] if t[0] <= moment][-1][2] == steward  # ties: the later
                }
                assert {str(r["partnership_id"]) for r in held} == holding, (steward, at)
                held_any += len(held)
        assert held_any > 10
