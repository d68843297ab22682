"""Partnership rules: given a history, when a command, then events or an error."""

from __future__ import annotations

from datetime import timedelta

import pytest

from domain.errors import (
    AggregateEnded,
    InvalidOutcomeFactor,
    NothingChanged,
    OccurredBeforeStart,
    OccurredInFuture,
    StageOutOfOrder,
    VersionConflict,
)
from domain.partnership import Partnership
from domain.values import Partner, Stage
from tests.unit.builders import T0, meta, opened, then_events


def test_opening_records_owner_steward_and_starts_in_analyse() -> None:
    partner = Partner(name="City of Oulu", kind="organisation", roles=("authority", "funder"))
    p = Partnership.open(partner, "regional", "bea", meta())
    assert then_events(p) == ["Opened"]
    assert (p.owner_unit, p.steward, p.stage, p.version) == ("regional", "bea", Stage.ANALYSE, 1)


def test_opening_can_use_an_id_chosen_by_the_integrator() -> None:
    import uuid

    chosen = uuid.uuid4()
    partner = Partner(name="X", kind="person", roles=("user",))
    assert Partnership.open(partner, "u", "s", meta(), id=chosen).id == chosen


def test_contact_updates_counts_and_last_contact() -> None:
    p = opened()
    p.log_contact("call", "inbound", ("alice",), meta(3))
    p.log_contact("visit", "outbound", ("alice", "bob"), meta(1))  # reported late
    assert then_events(p) == ["ContactLogged", "ContactLogged"]
    assert p.contacts == 2
    assert p.last_contact_at == T0 + timedelta(days=3)


def test_nothing_is_recorded_after_the_partnership_ended() -> None:
    p = opened()
    for stage, day in [(Stage.PRIORITISE, 1), (Stage.WIND_DOWN, 2), (Stage.ENDED, 3)]:
        p.change_stage(stage, "review", meta(day))
    p.collect_events()
    with pytest.raises(AggregateEnded):
        p.log_contact("call", "inbound", ("alice",), meta(4))
    assert then_events(p) == []


def test_stage_moves_that_skip_the_method_are_refused() -> None:
    p = opened()
    with pytest.raises(Exception) as refused:
        p.change_stage(Stage.MANAGE, "eager", meta(1))
    assert refused.value.code == "illegal_stage_transition"  # type: ignore[attr-defined]
    assert refused.value.details["allowed"] == ["prioritise"]  # type: ignore[attr-defined]
    assert then_events(p) == []


def test_a_stage_move_cannot_take_effect_before_the_current_stage_began() -> None:
    p = opened()
    p.change_stage(Stage.PRIORITISE, "review", meta(30))
    p.collect_events()
    with pytest.raises(StageOutOfOrder):
        p.change_stage(Stage.MAINTAIN, "review", meta(10))
    assert then_events(p) == [] and p.stage == Stage.PRIORITISE


def test_stage_change_records_previous_stage_and_since() -> None:
    p = opened()
    p.change_stage(Stage.PRIORITISE, "shortlisted", meta(10), note="fits strategy")
    (event,) = p.collect_events()
    assert (event.previous, event.stage, event.reason) == (Stage.ANALYSE, Stage.PRIORITISE, "shortlisted")
    assert p.stage_since == T0 + timedelta(days=10)


@pytest.mark.parametrize("bad", [0.5, 2.0, 0.0, -1.0, 100.0])
def test_outcome_factors_must_be_poor_adequate_or_excellent(bad: float) -> None:
    p = opened()
    with pytest.raises(InvalidOutcomeFactor):
        p.evaluate({"relevance": 10, "delivery": bad}, meta(5))
    assert then_events(p) == []


def test_outcome_is_the_product_of_the_factors() -> None:
    p = opened()
    p.evaluate({"relevance": 10, "delivery": 0.1, "fit": 10}, meta(5))
    (event,) = p.collect_events()
    assert event.outcome == 10.0
    assert p.last_outcome == 10.0


def test_ownership_transfer_changes_the_current_owner() -> None:
    p = opened()
    p.transfer_ownership("innovation", "carl", "steward_left", meta(30))
    assert then_events(p) == ["OwnershipTransferred"]
    assert (p.owner_unit, p.steward) == ("innovation", "carl")


def test_back_dated_transfer_lands_where_it_took_effect() -> None:
    p = opened()
    p.transfer_ownership("research", "bob", "reassignment", meta(100))
    p.transfer_ownership("research", "carol", "reassignment", meta(50))  # recorded later
    assert p.steward == "bob"  # bob's tenure is still the latest in valid time
    assert p.owner_at(T0 + timedelta(days=10)).steward == "alice"  # type: ignore[union-attr]
    assert p.owner_at(T0 + timedelta(days=60)).steward == "carol"  # type: ignore[union-attr]
    assert p.owner_at(T0 + timedelta(days=101)).steward == "bob"  # type: ignore[union-attr]
    assert p.owner_at(T0 - timedelta(days=1)) is None


def test_transfer_to_whoever_already_owned_it_then_is_refused() -> None:
    p = opened()
    with pytest.raises(NothingChanged):
        p.transfer_ownership("research", "alice", "reassignment", meta(5))


def test_events_cannot_predate_the_partnership() -> None:
    p = opened()
    with pytest.raises(OccurredBeforeStart):
        p.signal_interest("inbound", 2, meta(-1))


def test_events_cannot_happen_after_they_were_recorded() -> None:
    p = opened()
    with pytest.raises(OccurredInFuture):
        p.signal_interest("inbound", 2, meta(10, recorded_days=5))


def test_expected_version_guards_against_lost_updates() -> None:
    p = opened()
    p.segment_as("+", "++", meta(1), expected_version=1)
    with pytest.raises(VersionConflict) as conflict:
        p.segment_as("-", "+", meta(2), expected_version=1)
    assert conflict.value.details == {"expected_version": 1, "actual_version": 2}
    assert p.segment is not None and p.segment.rising


def test_history_rebuilds_the_same_state() -> None:
    partner = Partner(name="Acme Oy", kind="organisation", roles=("customer", "researcher"))
    p = Partnership.open(partner, "research", "alice", meta())
    p.log_contact("meeting", "outbound", ("alice",), meta(1))
    p.record_joint_activity("pilot", "Sensor pilot", 40, 35, meta(20), outcome="worked")
    p.transfer_ownership("innovation", "carl", "reorganisation", meta(40))
    p.change_stage(Stage.PRIORITISE, "review", meta(41))
    rebuilt = None
    for event in p.collect_events():
        rebuilt = event.mutate(rebuilt)
    assert isinstance(rebuilt, Partnership)
    assert (rebuilt.id, rebuilt.version, rebuilt.steward, rebuilt.stage) == (
        p.id,
        5,
        "carl",
        Stage.PRIORITISE,
    )
    assert (rebuilt.joint_activities, rebuilt.contacts) == (1, 1)


def test_roles_can_change_and_history_answers_which_roles_applied_when() -> None:
    from domain.history import partnership_then
    from domain.values import Role

    p = opened()  # a customer and a researcher
    with pytest.raises(NothingChanged):
        p.change_roles(("researcher", "customer"), meta(1))
    p.change_roles(("user", "funder"), meta(10))
    assert p.partner.roles == (Role.USER, Role.FUNDER)
    assert [type(e).__name__ for e in p.collect_events()] == ["RolesChanged"]
    fresh = Partnership.open(Partner(name="Acme Oy", kind="organisation", roles=("user",)), "u", "alice", meta())
    fresh.change_roles(("user", "funder"), meta(10))
    story = fresh.collect_events()
    assert partnership_then(story, T0 + timedelta(days=5), T0 + timedelta(days=5000))["partner"]["roles"] == ["user"]
    assert partnership_then(story, T0 + timedelta(days=11), T0 + timedelta(days=5000))["partner"]["roles"] == [
        "user",
        "funder",
    ]
