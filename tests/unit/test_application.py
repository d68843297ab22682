"""The application's decide/commit rules and its command handling, on the in-memory fake
of its persistence port (tests/unit/fakes.py): no PostgreSQL, no broker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from contract import commands as c
from contract.commands import SPECS
from domain.network import Network
from domain.operating_model import DEFAULT_MODEL
from domain.organisation import Organisation
from domain.partnership import Partnership
from services.application import Accepted, ConcurrentWrite, Rejected, Request, tally
from services.eventstore import ConsumerPosition, StalePosition
from tests.unit.fakes import MemoryRecorder, memory_app

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
PARTNER = {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]}
# A candidate network (its id chosen by the sender) and what entry to it requires of us.
CANDIDATE = "0b5e9b1e-6c43-4c3e-9d0a-6f1c2a7e4c01"
READY = dict.fromkeys(("competence", "visibility", "reliability", "own_resources", "selective_loyalty"), "met")


def api(command: c.Command, actor: str = "tester") -> Request:
    return Request(command, actor=actor, source="api")


def opened(pid: uuid.UUID, **extra: Any) -> Request:
    return api(c.model("OpenPartnership")(partnership_id=pid, partner=PARTNER, owner_unit="u", steward="s", **extra))


def contact(pid: uuid.UUID, **extra: Any) -> Request:
    return api(
        c.model("LogContact")(
            type="contact_logged", partnership_id=pid, channel="call", direction="inbound", participants=("s",), **extra
        )
    )


def test_a_command_is_recorded_with_its_times_actor_and_source() -> None:
    app = memory_app(clock=lambda: NOW)
    pid = uuid.uuid4()
    (outcome,) = app.execute([opened(pid, occurred_at=NOW - timedelta(days=3), command_id="c-1")])
    assert outcome == Accepted(pid, 1, 1)
    (event,) = app.domain_events(pid)
    assert isinstance(event, Partnership.Opened)
    assert (
        event.meta.occurred_at,
        event.meta.recorded_at,
        event.meta.actor,
        event.meta.source,
        event.meta.command_id,
    ) == (NOW - timedelta(days=3), NOW, "tester", "api", "c-1")


def test_a_repeated_command_id_answers_with_the_first_result_within_a_batch_and_across_batches() -> None:
    app = memory_app()
    pid = uuid.uuid4()
    first, again = app.execute([opened(pid, command_id="same"), opened(pid, command_id="same")])
    assert first == Accepted(pid, 1, 1) and again == Accepted(pid, 1, 1, duplicate=True)
    (later,) = app.execute([opened(pid, command_id="same")])
    assert later == Accepted(pid, 1, 1, duplicate=True)
    assert len(app.domain_events(pid)) == 1


def test_refusals_carry_a_stable_code_and_never_stop_the_rest_of_the_batch() -> None:
    app = memory_app()
    pid, unknown = uuid.uuid4(), uuid.uuid4()
    outcomes = app.execute(
        [
            opened(pid),
            contact(unknown),
            contact(pid, expected_version=5),
            contact(pid, occurred_at=datetime(2000, 1, 1, tzinfo=UTC)),
            contact(pid),
            opened(pid),
        ]
    )
    codes = [o.code if isinstance(o, Rejected) else "ok" for o in outcomes]
    assert codes == ["ok", "not_found", "version_conflict", "occurred_before_start", "ok", "already_exists"]
    assert [type(e).__name__ for e in app.domain_events(pid)] == ["Opened", "ContactLogged"]


def test_every_command_reaches_the_method_it_was_derived_from() -> None:
    """One command of each kind through the application, each landing as its event."""
    app = memory_app()
    pid, nid, survivor = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    bodies: dict[str, dict[str, Any]] = {
        "OpenPartnership": {"partner": PARTNER, "owner_unit": "u", "steward": "s"},
        "LogContact": {"channel": "call", "direction": "inbound", "participants": ["s"]},
        "SignalInterest": {"direction": "inbound", "strength": 2},
        "RecordJointActivity": {"kind": "pilot", "title": "P", "our_effort_hours": 1.0, "their_effort_hours": 1.0},
        "Evaluate": {"factors": {"fit": 10.0}},
        "Segment": {"now": "+", "future": "++"},
        "ChangeRoles": {"roles": ["user"]},
        "TransferOwnership": {"owner_unit": "v", "steward": "t", "reason": "reassignment"},
        "ChangeStage": {"stage": "prioritise", "reason": "fit"},
        "RetractEvent": {"event_id": f"{pid}:2", "reason": "logged on the wrong partner"},
        "CorrectEvent": {"event_id": f"{pid}:3", "changes": {"strength": 3}, "reason": "it was strong"},
        "JoinNetwork": {
            "name": "Forum",
            "purposes": ["influence"],
            "role": "member",
            "activity": "active",
            "owner_unit": "u",
            "steward": "s",
        },
        "AddMember": {"partnership_id": str(pid)},
        "LogMemberContribution": {"partnership_id": str(pid), "effort_hours": 3.0, "outcome": "adequate"},
        "TransferNetworkOwnership": {"owner_unit": "v", "steward": "t", "reason": "reassignment"},
        "ReviseBestBefore": {"best_before": "2030-01-01", "reason": "extended"},
        "ParkNetwork": {},
        "ActivateNetwork": {"need": "a call", "activated_by": "member", "by_partnership_id": str(pid)},
        "CloseActivation": {"outcome": "met", "note": "funded"},
        "RemoveMember": {"partnership_id": str(pid)},
        "LogNetworkContribution": {"our_effort_hours": 2.0},
        "EvaluateNetwork": {"factors": {"value": 1.0}},
        "LeaveNetwork": {"reason": "other"},
        "DefineCriteria": {"criteria": [{"name": "fit", "description": "how well they fit"}]},
        "DefineOperatingModel": {"cells": [{**cell.model_dump(), "cadence_days": 30} for cell in DEFAULT_MODEL.cells]},
        "ConsiderNetwork": {
            "candidate_id": CANDIDATE,
            "name": "AI forum",
            "purposes": ["funding"],
            "requirements": READY,
        },
        "DecidePlan": {"network_id": CANDIDATE, "decision": "join", "rationale": "funding", "decider": "Aino"},
        "MergePartnerships": {"survivor_id": str(survivor)},  # last: it ends the partnership
    }
    app.execute([opened(survivor)])
    assert set(bodies) == {spec.model.__name__ for spec in SPECS}
    for name, body in bodies.items():
        spec = next(s for s in SPECS if s.model.__name__ == name)
        target = {"partnership_id": pid} if spec.aggregate is Partnership else {"network_id": nid}
        if spec.aggregate is Network and "partnership_id" in body:
            target = {"network_id": nid}
        if spec.aggregate is Organisation:
            target = {}  # one organisation, under its well-known id
        command = spec.model.model_validate({**body, **target, "type": spec.event.type})
        (outcome,) = app.execute([api(command)])
        assert isinstance(outcome, Accepted), (name, outcome)
        assert type(app.domain_events(outcome.aggregate_id)[-1]).type == spec.event.type


def test_consumer_positions_move_by_compare_and_set_with_the_events() -> None:
    app = memory_app()
    position = ConsumerPosition("ingest", "commands", 0, 0, 10, None)
    app.commit(app.decide([opened(uuid.uuid4())]), [position])
    with pytest.raises(StalePosition):  # a redelivered batch: nothing recorded twice
        app.commit(app.decide([opened(uuid.uuid4())]), [position])
    assert len(app.recorder._stored_events) == 1  # type: ignore[attr-defined]


def test_a_concurrent_write_is_decided_again_on_fresh_state() -> None:
    app = memory_app()
    pid = uuid.uuid4()
    app.execute([opened(pid)])
    stale = app.decide([contact(pid)])
    app.execute([contact(pid)])  # someone else wrote version 2 meanwhile
    with pytest.raises(ConcurrentWrite):
        app.commit(stale)
    (outcome,) = app.execute([contact(pid)])  # execute decides again and lands on version 3
    assert outcome == Accepted(pid, 3, 3)


def test_outcomes_are_tallied_in_the_same_save() -> None:
    app = memory_app()
    pid = uuid.uuid4()
    app.execute([opened(pid, command_id="a"), opened(pid, command_id="a"), contact(uuid.uuid4())])
    recorder = app.recorder
    assert isinstance(recorder, MemoryRecorder)
    assert recorder.tallies == {
        ("api", "accepted", ""): 1,
        ("api", "duplicate", ""): 1,
        ("api", "rejected", "not_found"): 1,
    }
    decision = app.decide([contact(pid)])
    assert tally(decision, [("kafka", "malformed_json")]) == {
        ("api", "accepted", ""): 1,
        ("kafka", "rejected", "malformed_json"): 1,
    }


def test_history_and_state_come_back_as_recorded() -> None:
    app = memory_app()
    pid = uuid.uuid4()
    app.execute([opened(pid), contact(pid, command_id="k")])
    history = app.history(pid, Partnership)
    assert [e["type"] for e in history] == ["partnership_opened", "contact_logged"]
    assert history[1]["command_id"] == "k" and history[1]["position"] == 2
    assert app.get(pid, Partnership).contacts == 1
    assert app.event_at(2) == (pid, 2) and app.event_at(3) is None


def test_a_new_member_is_the_partnership_named_looked_up_by_the_service() -> None:
    app = memory_app()
    pid, nid = uuid.uuid4(), uuid.uuid4()
    join = c.model("JoinNetwork")(
        network_id=nid, name="Forum", purposes=("influence",), role="member", activity="active", owner_unit="u",
        steward="s",
    )  # fmt: skip

    def add(member: uuid.UUID) -> Request:
        return api(c.model("AddMember")(type="member_added", network_id=nid, partnership_id=member))

    outcomes = app.execute([api(join), add(pid), opened(pid), add(pid), add(nid)])
    codes = [o.code if isinstance(o, Rejected) else "ok" for o in outcomes]
    # Unknown until opened (in the same batch, in order); a network is no partnership.
    assert codes == ["ok", "unknown_member", "ok", "ok", "unknown_member"]
    assert app.get(nid, Network).members == {pid}
