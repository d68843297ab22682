"""Loading an aggregate to decide a command unseals only the personal fields its events'
``apply`` keeps (``keeps_personal`` in domain/base.py): the state must be exactly what
unsealing everything gives, and the people named only in what happened (a contact's
participants) must not even have their keys looked up."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from contract import commands as c
from contract.commands import any_command
from services.application import Request, Verkosto
from services.demo import build
from services.privacy import ERASED, subject_hash
from services.settings import Settings
from tests.conftest import opened_application

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def folded(app: Verkosto, rows: list[dict[str, Any]], event_of: Any) -> dict[str, Any]:
    aggregate = None
    for row in rows:
        aggregate = event_of(row).mutate(aggregate)
    return vars(aggregate)


def test_folding_only_what_is_kept_gives_the_state_unsealing_everything_gives(app: Verkosto) -> None:
    demo = build(NOW - timedelta(days=3 * 365), NOW, 40, seed=7)
    requests = [Request(any_command.validate_python(cmd), "demo", "api") for _, cmd in demo.commands]
    for i in range(0, len(requests), 500):
        assert all(hasattr(o, "position") for o in app.execute(requests[i : i + 500]))
    ids = {n.originator_id for n in app.recorder.select_notifications(start=1, limit=100_000)}
    left_sealed = 0
    for aggregate_id in ids:
        rows = app.stored_events([aggregate_id])
        assert folded(app, rows, app._folded_event) == folded(app, rows, app._domain_event)
        left_sealed += sum(
            ERASED in repr(app._folded_event(r)) and ERASED not in repr(app._domain_event(r)) for r in rows
        )
    assert left_sealed > 500  # the contacts' participants, at least: the comparison above means something


def contact(pid: uuid.UUID, participant: str) -> Request:
    command = c.LogContact(
        type="contact_logged", partnership_id=pid, channel="call", direction="inbound", participants=(participant,)
    )
    return Request(command, "crm", "api")


def test_a_command_looks_up_no_key_of_the_people_it_does_not_need(app: Verkosto, settings: Settings) -> None:
    pid = uuid.uuid4()
    partner = {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]}
    opened = c.OpenPartnership(partnership_id=pid, partner=partner, owner_unit="u", steward="Sanna Steward")  # type: ignore[arg-type]
    app.execute([Request(opened, "crm", "api"), contact(pid, "Pekka Paikalla")])
    with opened_application(settings) as cold:  # its caches empty, as a fresh process's are
        assert cold.keys is not None
        assert all(hasattr(o, "position") for o in cold.execute([contact(pid, "Olli Osallistuja")]))
        assert subject_hash("person:Sanna Steward") in cold.keys.cache  # kept by the aggregate: unsealed
        assert subject_hash("person:Pekka Paikalla") not in cold.keys.cache  # only in what happened
        state = cold.load_many({pid})[pid]
        assert state.tenures[-1].steward == "Sanna Steward"  # type: ignore[attr-defined]
