"""The pure folds outside domain/, on events the domain itself records: the projections'
document folds and trust steps, the published form, and parsing a Kafka command."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kafka.consumer.fetcher import ConsumerRecord

from contract.commands import model
from contract.events import Published, published_event
from domain.base import DomainEvent
from domain.partnership import Partnership
from projections.lifecycle import fold_partnership
from projections.networks import fold_network
from projections.portfolio import fold_portfolio
from projections.trust import happening
from services.eventstore import PydanticMapper
from services.ingest import Malformed, parse
from tests.unit.builders import meta, opened


def published(events: list[DomainEvent]) -> list[Published]:
    """As the bus delivers them: stored, published, decoded."""
    mapper = PydanticMapper(transcoder=None)  # type: ignore[arg-type]
    out = []
    for position, event in enumerate(events, start=1):
        stored = mapper.to_stored_event(event)
        out.append(Published.of(published_event(stored.topic, stored.state, position)))
    return out


def fold(function: Any, events: list[Published]) -> Any:
    doc = None
    for event in events:
        doc = function(doc, event)
    return doc


def partnership_story() -> list[DomainEvent]:
    fresh = Partnership.open(opened().partner, "research", "alice", meta(0))
    fresh.log_contact("call", "inbound", ("alice",), meta(10))
    fresh.log_contact("meeting", "outbound", ("alice",), meta(5))  # back-dated: sorted in
    fresh.record_joint_activity("pilot", "Pilot", 10.0, 4.0, meta(20))
    fresh.evaluate({"fit": 10.0, "reach": 0.1}, meta(30))
    fresh.segment_as("+", "++", meta(40))
    fresh.segment_as("-", "+", meta(35))  # took effect before the previous one
    fresh.transfer_ownership("sales", "bob", "steward_left", meta(50))
    fresh.change_stage("prioritise", "fit", meta(60))
    return fresh.collect_events()


def test_the_lifecycle_document_keeps_every_fact_in_valid_time() -> None:
    doc = fold(fold_partnership, published(partnership_story()))
    assert doc["partner_name"] == "Acme Oy"
    # Sorted by valid time, each with the version that recorded it (the evidence of flags).
    assert [c[1] for c in doc["contacts"]] == [3, 2] and doc["contacts"] == sorted(doc["contacts"])
    assert doc["activities"] == [[doc["activities"][0][0], 10.0, 4.0, 4]]
    assert [e[1:] for e in doc["evaluations"]] == [[1.0, 5]]  # 10 × 0.1
    assert [s[1:] for s in doc["segments"]] == [["-", "+", 7], ["+", "++", 6]]
    assert [r[1:] for r in doc["roles"]] == [[["customer", "researcher"], 1]]
    assert [t[1:] for t in doc["tenures"]] == [["research", "alice", 1], ["sales", "bob", 8]]
    assert [v for _, v in doc["stewards_left"]] == [8]
    assert [t[1:] for t in doc["transitions"]] == [["analyse", "prioritise", "fit", 9]]


def test_events_of_a_partnership_opened_before_the_read_model_are_skipped() -> None:
    events = published(partnership_story())[1:]
    assert fold(fold_partnership, events) is None
    assert fold(fold_portfolio, events) is None


def test_the_portfolio_document_sorts_segmentations_by_valid_time() -> None:
    doc = fold(fold_portfolio, published(partnership_story()))
    assert [s[2:] for s in doc["segmentations"]] == [["-", "+"], ["+", "++"]]


def test_the_network_document_follows_membership_activity_and_leaving() -> None:
    from domain.network import Network

    partner = opened()
    member = partner.id
    story = Network.join(
        "Data Alliance", ("competence",), "member", "passive", None, meta(0), owner_unit="research", steward="alice"
    )
    story.activate("a call", meta(1))
    story.add_member(member, meta(2), member=partner)
    story.log_contribution(3.5, meta(3))
    story.evaluate({"value": 10.0}, meta(4))
    story.park(meta(5))
    story.leave("low_efficiency", meta(6))
    events = published(story.collect_events())
    doc = fold(fold_network, events)
    assert doc["name"] == "Data Alliance" and doc["purposes"] == ["competence"]
    assert doc["members"] == [str(member)]
    assert doc["activity"] == "passive" and doc["left_reason"] == "low_efficiency"
    assert [c[1] for c in doc["contributions"]] == [3.5]
    assert [e[1] for e in doc["evaluations"]] == [10.0]
    assert [a[1] for a in doc["activations"]] == ["a call"]
    assert len(doc["parkings"]) == 1 and doc["last_event_at"] == events[-1].occurred_at
    assert fold(fold_network, events[1:]) is None  # joined before the read model existed


def test_trust_sees_what_moves_it_and_nothing_else() -> None:
    kinds = [h.kind if (h := happening(p)) else None for p in published(partnership_story())]
    assert kinds == ["opened", "contact", "contact", "joint_activity", "evaluation", None, None, None, None]
    evaluation = happening(published(partnership_story())[4])
    assert evaluation is not None and evaluation.outcome == 1.0


def test_the_published_form_names_the_event_and_keeps_its_data() -> None:
    (opening, contact, *_) = published(partnership_story())
    assert opening.event.type == "partnership_opened" and contact.event.type == "contact_logged"
    mapper = PydanticMapper(transcoder=None)  # type: ignore[arg-type]
    stored = mapper.to_stored_event(contact.event)
    body = published_event(stored.topic, stored.state, 7)
    assert body["position"] == 7 and body["type"] == "contact_logged" and body["aggregate_type"] == "partnership"
    assert body["data"] == {
        "channel": "call",
        "direction": "inbound",
        "participants": ["alice"],
        "effort_minutes": None,
        "summary": None,
    }


def record(value: bytes) -> ConsumerRecord:
    return ConsumerRecord("commands", 0, None, 5, 0, 0, b"k", value, [], None, 1, len(value), 0)


def test_parsing_a_kafka_command_names_its_sender_and_its_type() -> None:
    body = {
        "type": "contact_logged",
        "partnership_id": "00000000-0000-4000-8000-000000000001",
        "channel": "call",
        "direction": "inbound",
        "participants": ["a"],
        "actor": " crm ",
    }
    request = parse(record(json.dumps(body).encode()))
    assert request.actor == "crm" and request.source == "kafka"
    assert isinstance(request.command, model("LogContact"))


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (b"not json", "malformed_json"),
        (b"[1, 2]", "malformed_json"),
        (b'{"type": "contact_logged"}', "missing_actor"),
        (b'{"type": "contact_logged", "actor": "a\\u0000b"}', "invalid_command"),
        (b'{"type": "contact_deleted", "actor": "crm"}', "invalid_command"),
        (b"[" * 100_000, "malformed_json"),
    ],
)
def test_parsing_says_exactly_why_a_message_is_refused(value: bytes, reason: str) -> None:
    with pytest.raises(Malformed) as refused:
        parse(record(value))
    assert refused.value.reason == reason
