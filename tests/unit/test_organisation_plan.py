"""The organisation's part of the network plan: candidate networks it considers joining
(``network_considered``) and its decisions per network (``plan_decided``), in the domain
and through the application, where the network a decision names is looked up."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from contract.commands import any_command, model
from domain.errors import NotACandidate, NothingChanged, NotOurNetwork, OccurredBeforeStart
from domain.network import Network
from domain.network_candidates import EntryRequirements, candidate_id_for
from domain.organisation import ORGANISATION_ID, Organisation
from services.application import Accepted, Rejected, Request
from tests.unit.builders import T0, joined, meta
from tests.unit.fakes import memory_app

READY = EntryRequirements(
    competence="met", visibility="partly_met", reliability="met", own_resources="missing", selective_loyalty="met"
)
OWNED = {"owner_unit": "research", "steward": "alice"}  # who looks after a network we join
ALL_MET = READY.model_copy(update={"visibility": "met", "own_resources": "met"})


def founded() -> Organisation:
    organisation = Organisation.found(meta(-500))
    organisation.collect_events()
    return organisation


def considered(o: Organisation, name: str = "Nordic AI forum", days: float = 10, **extra: Any) -> uuid.UUID:
    o.consider_network(name, extra.pop("purposes", ("funding",)), extra.pop("requirements", READY), meta(days), **extra)
    (event,) = o.collect_events()
    assert isinstance(event, Organisation.NetworkConsidered)
    return event.candidate_id


# Candidates -----------------------------------------------------------------------------


def test_a_candidate_gets_a_derived_id_unless_the_sender_chooses_one() -> None:
    o = founded()
    assert considered(o) == candidate_id_for("Nordic AI forum")
    chosen = uuid.uuid4()
    assert considered(o, "Other", candidate_id=chosen) == chosen


def test_purposes_are_stored_once_each_in_a_fixed_order() -> None:
    o = founded()
    o.consider_network("F", ("influence", "funding", "influence"), READY, meta(1))
    (event,) = o.collect_events()
    assert [p.value for p in event.purposes] == ["funding", "influence"]  # type: ignore[attr-defined]


def test_considering_a_candidate_again_updates_it_from_then_on() -> None:
    o = founded()
    cid = considered(o, days=10)
    considered(o, days=20, requirements=ALL_MET, note="we hired a data scientist")
    before, after = o.candidates_at(T0 + timedelta(days=15)), o.candidates_at(T0 + timedelta(days=20))
    assert before[cid].requirements == READY and before[cid].note is None
    assert after[cid].requirements == ALL_MET and after[cid].note == "we hired a data scientist"
    assert o.candidates_at(T0 + timedelta(days=9)) == {}  # not yet a candidate then


def test_considering_it_the_same_way_again_changes_nothing_but_back_dated_it_does() -> None:
    o = founded()
    considered(o, days=10)
    with pytest.raises(NothingChanged) as refused:
        o.consider_network("Nordic AI forum", ("funding",), READY, meta(11))
    assert refused.value.code == "nothing_changed"
    assert considered(o, days=5) == candidate_id_for("Nordic AI forum")  # it applies from earlier now


# Decisions ------------------------------------------------------------------------------


def test_join_is_decided_for_a_candidate_and_the_decision_is_in_force_until_the_next() -> None:
    o = founded()
    cid = considered(o, days=10)
    o.decide_plan(cid, "join", "it funds what we cannot alone", "Aino Virtanen", meta(12))
    (event,) = o.collect_events()
    assert isinstance(event, Organisation.PlanDecided)
    assert (event.network_id, event.decision, event.decider, event.meta.actor) == (
        cid,
        "join",
        "Aino Virtanen",
        "tester",
    )
    assert o.decisions_at(T0 + timedelta(days=11)) == {}
    assert o.decisions_at(T0 + timedelta(days=12))[cid].decision == "join"


@pytest.mark.parametrize("decision", ["keep", "activate", "park", "leave"])
def test_the_network_decisions_are_for_a_network_we_are_in_not_a_candidate(decision: str) -> None:
    o = founded()
    cid = considered(o, days=10)
    with pytest.raises(NotOurNetwork) as refused:
        o.decide_plan(cid, decision, "why", "Aino", meta(12), network=None)
    assert refused.value.code == "not_our_network" and "decide join" in refused.value.message
    network = joined()  # joined at T0
    o.decide_plan(network.id, decision, "why", "Aino", meta(12), network=network)
    assert o.decisions_at(T0 + timedelta(days=12))[network.id].decision == decision


def test_join_is_refused_for_a_network_we_are_in_or_a_candidate_not_yet_considered() -> None:
    o = founded()
    network = joined()
    with pytest.raises(NotACandidate) as refused:
        o.decide_plan(network.id, "join", "why", "Aino", meta(12), network=network)
    assert refused.value.code == "not_a_candidate"
    cid = considered(o, days=10)
    with pytest.raises(NotACandidate):
        o.decide_plan(cid, "join", "why", "Aino", meta(9))  # before it was considered


def test_a_candidate_joined_under_its_id_can_have_the_join_recorded_back_dated() -> None:
    o = founded()
    cid = considered(o, days=10)
    network = Network.join("Nordic AI forum", ("funding",), "member", "active", None, meta(30), id=cid, **OWNED)
    o.decide_plan(cid, "join", "decided in May", "Aino", meta(20), network=network)  # before it was joined
    with pytest.raises(NotACandidate):
        o.decide_plan(cid, "join", "decided in June", "Aino", meta(31), network=network)  # we are in it then


def test_a_decision_before_we_joined_the_network_is_refused() -> None:
    network = Network.join("Forum", ("influence",), "member", "active", None, meta(50), **OWNED)
    with pytest.raises(OccurredBeforeStart):
        founded().decide_plan(network.id, "keep", "why", "Aino", meta(40), network=network)


def test_the_same_decision_again_changes_nothing_and_a_new_rationale_does() -> None:
    o, network = founded(), joined()
    o.decide_plan(network.id, "keep", "it pays", "Aino", meta(12), network=network)
    with pytest.raises(NothingChanged):
        o.decide_plan(network.id, "keep", "it pays", "Aino", meta(13), network=network)
    o.decide_plan(network.id, "keep", "it pays, and it is mandated", "Aino", meta(13), network=network)
    assert o.version == 3


def test_a_later_decision_applies_from_its_date_and_a_back_dated_one_lands_where_it_applies() -> None:
    o, network = founded(), joined()
    o.decide_plan(network.id, "keep", "fine", "Aino", meta(10), network=network)
    o.decide_plan(network.id, "leave", "too slow", "Aino", meta(30), network=network)
    o.decide_plan(network.id, "park", "less for now", "Ville", meta(20), network=network)  # recorded last
    at = {day: o.decisions_at(T0 + timedelta(days=day))[network.id].decision for day in (10, 25, 30)}
    assert at == {10: "keep", 25: "park", 30: "leave"}


# The contract and the application -------------------------------------------------------


def decide(network_id: Any, decision: str = "keep", **extra: Any) -> dict[str, Any]:
    return {"type": "plan_decided", "network_id": str(network_id), "decision": decision,
            "rationale": "it pays", "decider": "Aino", **extra}  # fmt: skip


def consider(**extra: Any) -> dict[str, Any]:
    return {"type": "network_considered", "name": "Nordic AI forum", "purposes": ["funding"],
            "requirements": READY.model_dump(mode="json"), **extra}  # fmt: skip


@pytest.mark.parametrize(
    "body",
    [
        decide(uuid.uuid4(), rationale=""),
        decide(uuid.uuid4(), rationale="  "),
        decide(uuid.uuid4(), decision="left"),  # what the plan says of a left network, not a decision
        {k: v for k, v in decide(uuid.uuid4()).items() if k != "decider"},
        {k: v for k, v in decide(uuid.uuid4()).items() if k != "network_id"},
        decide(uuid.uuid4(), network={"name": "a network supplied by the sender"}),
        consider(purposes=[]),
        consider(requirements={"competence": "met"}),
        consider(candidate_id="not-a-uuid"),
    ],
)
def test_the_contract_refuses_incomplete_or_invented_fields(body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        any_command.validate_python(body)


def test_the_commands_are_named_after_what_they_record() -> None:
    assert model("ConsiderNetwork").model_fields["type"].is_required()  # not a creation: type says what
    assert {"network_id", "decision", "rationale", "decider"} <= set(model("DecidePlan").model_fields)
    assert "network" not in model("DecidePlan").model_fields  # looked up by the service


def request(body: dict[str, Any]) -> Request:
    return Request(any_command.validate_python(body), actor="integrator", source="api")


def test_the_application_looks_up_the_network_a_decision_names() -> None:
    app = memory_app()
    nid = uuid.uuid4()
    join = {"type": "network_joined", "network_id": str(nid), "name": "Forum", "purposes": ["influence"],
            "role": "member", "activity": "active", "occurred_at": "2024-01-01T00:00:00Z", **OWNED}  # fmt: skip
    cid = candidate_id_for("Nordic AI forum")
    outcomes = app.execute(
        [
            request(join),
            request(decide(nid, "leave", occurred_at="2024-06-01T00:00:00Z")),
            request(decide(uuid.uuid4())),  # no such network
            request(decide(cid, "join")),  # not considered yet
            request(consider()),
            request(decide(cid, "join")),
            request(decide(cid, "park")),
            request(decide(nid, "keep", occurred_at="2023-06-01T00:00:00Z")),  # before we joined
        ]
    )
    codes = [o.code if isinstance(o, Rejected) else "ok" for o in outcomes]
    assert codes == ["ok", "ok", "not_our_network", "not_a_candidate", "ok", "ok", "not_our_network",
                     "occurred_before_start"]  # fmt: skip
    assert isinstance(outcomes[1], Accepted) and outcomes[1].aggregate_id == ORGANISATION_ID
    decided = [e for e in app.domain_events(ORGANISATION_ID) if isinstance(e, Organisation.PlanDecided)]
    assert [(e.network_id, e.decision, e.meta.actor) for e in decided] == [
        (nid, "leave", "integrator"),
        (cid, "join", "integrator"),
    ]
    assert len(app.domain_events(nid)) == 1  # the network looked up is not written to
