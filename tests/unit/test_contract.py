"""The contract is derived from the domain's declarations and covers every event."""

from __future__ import annotations

import inspect
import json
import typing
from datetime import date
from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from contract.commands import SPECS, any_command
from contract.events import by_name, event_types, published_event, typed
from contract.personal import personal_fields
from domain.base import SUPPLIED, DomainEvent
from domain.corrections import Changes
from domain.criteria import CatalogueInForce, CriteriaCatalogue, Criterion
from domain.network import Network
from domain.network_candidates import EntryRequirements
from domain.operating_model import DEFAULT_MODEL, Mode
from domain.organisation import Organisation
from domain.partnership import Partnership
from services.eventstore import PydanticMapper
from tests.unit.builders import joined, meta, opened


def event_classes(aggregate: type) -> set[type]:
    return {
        member
        for _, member in inspect.getmembers(aggregate, inspect.isclass)
        if issubclass(member, DomainEvent)
        and member.__qualname__.startswith(aggregate.__name__ + ".")
        and member.__name__ not in ("Event", "Created")
    }


def recorded_events() -> list[DomainEvent]:
    """One of every event, recorded through the domain's own commands, with every
    optional text filled in so that nothing personal hides behind a None."""
    partner = opened()
    partner.log_contact("meeting", "inbound", ("Matti Meikäläinen",), meta(1), effort_minutes=30, summary="talked")
    partner.signal_interest("inbound", 2, meta(2), evidence="asked for more")
    partner.record_joint_activity("workshop", "Lunch with Matti", 2.0, 1.0, meta(3), outcome="a plan")
    partner.evaluate({"fit": 10.0}, meta(4), note="fine")
    fit, reach = (Criterion(name=n, description=f"how well they {n}") for n in ("fit", "reach"))
    catalogue = CatalogueInForce(
        catalogue=CriteriaCatalogue.of((fit, reach)), version=2, effective_from=meta().occurred_at
    )
    partner.evaluate({"reach": 1.0}, meta(4.5), note="ok", skipped={"fit": "unknown yet"}, catalogue=catalogue)
    partner.segment_as("+", "++", meta(5), rationale="growing")
    partner.change_roles(("customer", "funder"), meta(5.5))
    partner.transfer_ownership("sales", "bob", "reassignment", meta(6))
    partner.change_stage("prioritise", "fit", meta(7), note="go")
    contact, interest = (next(e for e in partner.pending_events if e.originator_version == v) for v in (2, 3))
    changes = Changes(participants=("Maija Meikäläinen",), summary="talked more", occurred_at=meta(1.5).occurred_at)
    partner.correct_event(f"{partner.id}:2", changes, "Maija, not Matti", meta(8), target=contact)
    partner.retract_event(f"{partner.id}:3", "another partner asked", meta(8), target=interest)
    network = joined()
    network.add_member(partner.id, meta(1), member=partner)
    network.log_member_contribution(partner.id, 4.0, "excellent", meta(1.5))
    network.activate("Matti's call for funding", meta(2), activated_by="member", by_partnership_id=partner.id)
    network.close_activation("partly", meta(2.5), note="Matti got half of it")
    network.remove_member(partner.id, meta(2.7))
    network.park(meta(2.8))
    network.activate("a call for funding", meta(3))
    network.park(meta(4))
    network.log_contribution(3.0, meta(5), outcome="met Matti")
    network.evaluate({"value": 1.0}, meta(6))
    network.revise_best_before(date(2026, 6, 30), "Matti extended it", meta(6.5))
    network.transfer_ownership("sales", "Maija Meikäläinen", "reassignment", meta(6.7))
    network.leave("other", meta(7))
    # The builders collect their creation events; record two more to have them too.
    fresh_partner = Partnership.open(partner.partner, "research", "alice", meta())
    fresh_partner.merge_into(partner.id, meta(9), reason="the same Matti", survivor=partner)
    fresh_network = Network.join(
        "Forum", ("competence",), "member", "active", None, meta(), owner_unit="research", steward="Matti Meikäläinen"
    )
    organisation = Organisation.found(meta())
    organisation.define_criteria((fit,), meta(1))
    organisation.define_operating_model(
        tuple(c.model_copy(update={"mode": Mode.MANAGE}) for c in DEFAULT_MODEL.cells), meta(2)
    )
    ready = EntryRequirements(
        competence="met", visibility="partly_met", reliability="met", own_resources="missing", selective_loyalty="met"
    )
    organisation.consider_network("Nordic AI forum", ("funding",), ready, meta(3), note="Matti invited us")
    organisation.decide_plan(
        fresh_network.id, "keep", "Maija says it pays", "Maija Meikäläinen", meta(4), network=fresh_network
    )
    return [
        *fresh_partner.collect_events(),
        *partner.collect_events(),
        *fresh_network.collect_events(),
        *network.collect_events(),
        *organisation.collect_events(),
    ]


def test_every_domain_event_is_in_the_contract_once_with_one_command() -> None:
    registered = {t.cls for t in event_types()}
    assert event_classes(Partnership) | event_classes(Network) | event_classes(Organisation) == registered
    assert len(by_name()) == len(registered)  # contract names are unique
    recorded_by = [spec.event for spec in SPECS]
    # The organisation is founded by the application on its first command, never sent.
    # A merge records the survivor's half with the absorbed one's command.
    assert sorted(recorded_by, key=str) == sorted(registered - {Organisation.Founded, Partnership.Absorbed}, key=str)


def test_the_samples_cover_every_event() -> None:
    assert {type(e) for e in recorded_events()} == {t.cls for t in event_types()}


@pytest.mark.parametrize("event", recorded_events(), ids=lambda e: type(e).type)
def test_a_published_event_carries_every_declared_field_and_types_back_to_the_same_event(event: DomainEvent) -> None:
    stored = PydanticMapper(transcoder=None).to_stored_event(event)  # type: ignore[arg-type]
    published = published_event(stored.topic, stored.state, 1)
    kind = by_name()[published["type"]]
    assert set(published["data"]) == set(kind.data_fields)
    assert typed(published) == event


@pytest.mark.parametrize("event", recorded_events(), ids=lambda e: type(e).type)
def test_sealing_seals_exactly_the_fields_marked_personal(event: DomainEvent) -> None:
    from services.privacy import PREFIX, seal_event

    class Keys:
        def key(self, digest: str, create: bool) -> bytes:
            return b"k" * 32

    stored = PydanticMapper(transcoder=None).to_stored_event(event)  # type: ignore[arg-type]
    plain = json.loads(stored.state)
    sealed = seal_event(stored.topic, json.loads(stored.state), Keys())  # type: ignore[arg-type]
    marked = {f.path for f in personal_fields(type(event))}

    def leaves(node: Any, path: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
        if isinstance(node, dict):
            return {k: v for key, child in node.items() for k, v in leaves(child, (*path, key)).items()}
        if isinstance(node, list):
            return {k: v for child in node for k, v in leaves(child, (*path, "*")).items()}
        return {path: node}

    person_partner = isinstance(event, Partnership.Opened) and event.partner.kind == "person"
    for path, value in leaves(sealed).items():
        original = leaves(plain)[path]
        personal = path in marked and (path != ("partner", "name") or person_partner)
        if personal and isinstance(original, str):
            assert isinstance(value, str) and value.startswith(PREFIX), path
        else:
            assert value == original, path


# Names that, in this domain, always hold a person or free text about one.
PERSONAL_NAMES = {
    "steward",
    "participants",
    "summary",
    "evidence",
    "title",
    "outcome",
    "note",
    "rationale",
    "need",
    "on_behalf_of",
}  # (a criterion's description is the organisation's own text, about no person)


def unmarked_personal_fields(event: type[DomainEvent]) -> list[str]:
    """Text fields whose name says they hold people or text about them, yet unmarked."""
    marked = {f.path[-1] if f.path[-1] != "*" else f.path[-2] for f in personal_fields(event)}
    return [
        name
        for name, info in event.model_fields.items()
        if name in PERSONAL_NAMES and "str" in str(info.annotation) and name not in marked
    ]


def test_every_text_field_with_a_personal_name_is_marked_personal() -> None:
    assert {kind.name: unmarked_personal_fields(kind.cls) for kind in event_types()} == {
        kind.name: [] for kind in event_types()
    }


def test_the_check_catches_an_unmarked_personal_field() -> None:
    class Leaky(Partnership.Event):
        type: typing.ClassVar[str] = "leaky"
        summary: str

    assert unmarked_personal_fields(Leaky) == ["summary"]
    assert unmarked_personal_fields(Partnership.ContactLogged) == []


def test_commands_need_timezone_aware_times_and_known_types() -> None:
    base = {"type": "contact_logged", "channel": "call", "direction": "inbound", "participants": ["a"]}
    assert any_command.validate_python({**base, "occurred_at": "2024-01-01T10:00:00+02:00"})
    with pytest.raises(ValidationError):
        any_command.validate_python({**base, "occurred_at": "2024-01-01T10:00:00"})
    with pytest.raises(ValidationError):
        any_command.validate_python({**base, "type": "contact_deleted"})
    with pytest.raises(ValidationError):
        any_command.validate_python({**base, "surprise": 1})


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59Z", "1899-12-31T00:00:00Z"])
def test_implausible_times_are_refused_before_they_reach_time_arithmetic(moment: str) -> None:
    body = {"type": "contact_logged", "channel": "call", "direction": "inbound", "participants": ["a"]}
    with pytest.raises(ValidationError):
        any_command.validate_python({**body, "occurred_at": moment})


@pytest.mark.parametrize("factor", [float("nan"), float("inf")])
def test_outcome_factors_must_be_finite_numbers(factor: float) -> None:
    with pytest.raises(ValidationError):
        any_command.validate_python({"type": "evaluated", "factors": {"fit": factor}})


def test_a_command_carries_exactly_its_methods_parameters() -> None:
    for spec in SPECS:
        method = getattr(spec.aggregate, spec.method)
        parameters = set(inspect.signature(method).parameters) - {"self", "cls", "meta", "expected_version", "id"}
        parameters -= SUPPLIED  # looked up by the service, never sent
        assert set(spec.fields) == parameters, spec.model.__name__
        assert spec.model.model_fields["type"].annotation == typing.Literal[spec.event.type]


def test_a_nul_anywhere_in_a_command_is_refused_naming_its_field() -> None:
    with pytest.raises(ValidationError) as refused:
        any_command.validate_python({"type": "evaluated", "factors": {"f\u0000it": 10}, "partnership_id": str(uuid4())})
    assert refused.value.errors()[0]["loc"][:2] == ("evaluated", "factors")
