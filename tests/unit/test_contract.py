"""The published contract covers every event the domain can record."""

from __future__ import annotations

import inspect

import pytest
from pydantic import ValidationError

from domain.base import DomainEvent
from domain.network import Network
from domain.partnership import Partnership
from services.contract import any_command
from services.published import EVENT_TYPES


def event_classes(aggregate: type) -> set[type]:
    return {
        member for _, member in inspect.getmembers(aggregate, inspect.isclass)
        if issubclass(member, DomainEvent) and member.__qualname__.startswith(aggregate.__name__ + ".")
        and member.__name__ not in ("Event", "Created")
    }


def test_every_domain_event_has_a_published_name() -> None:
    assert event_classes(Partnership) | event_classes(Network) == set(EVENT_TYPES)
    names = [name for _, name in EVENT_TYPES.values()]
    assert len(names) == len(set(names))


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


def test_sealing_covers_free_text_of_both_aggregates_and_leaves_numbers_alone() -> None:
    from services.privacy import PREFIX, seal_event

    class Keys:
        def key(self, digest: str, create: bool) -> bytes:
            return b"k" * 32

    network_topic = "domain.network:Network.Evaluated"
    evaluated = {"originator_id": "n1", "outcome": 10.0, "meta": {"on_behalf_of": None}}
    assert seal_event(network_topic, dict(evaluated), Keys())["outcome"] == 10.0  # type: ignore[arg-type]
    logged = {"originator_id": "n1", "outcome": "met Matti", "meta": {"on_behalf_of": None}}
    assert seal_event("domain.network:Network.ContributionLogged", logged, Keys())["outcome"].startswith(PREFIX)  # type: ignore[arg-type]
    activity = {"originator_id": "p1", "title": "Lunch with Matti", "outcome": None, "meta": {"on_behalf_of": None}}
    sealed = seal_event("domain.partnership:Partnership.JointActivityRecorded", activity, Keys())  # type: ignore[arg-type]
    assert sealed["title"].startswith(PREFIX) and sealed["outcome"] is None
    sneaky = {"originator_id": "p1", "summary": "pii:v1:looks-sealed", "participants": [], "meta": {"on_behalf_of": None}}
    assert seal_event("domain.partnership:Partnership.ContactLogged", sneaky, Keys())["summary"] != "pii:v1:looks-sealed"  # type: ignore[arg-type]
