"""Network rules: membership, activation of dormant networks, leaving."""

from __future__ import annotations

import uuid

import pytest

from domain.errors import AggregateEnded, InvalidOutcomeFactor, MembershipError, NothingChanged
from domain.values import NetworkActivity
from tests.unit.builders import joined, meta, then_events


def test_a_passive_network_is_activated_for_a_need() -> None:
    n = joined("passive")
    n.activate("joint EU bid", meta(30))
    assert then_events(n) == ["Activated"]
    assert n.activity == NetworkActivity.ACTIVE
    with pytest.raises(NothingChanged):
        n.activate("again", meta(31))


def test_members_are_added_once_and_removed_only_if_present() -> None:
    n = joined()
    member = uuid.uuid4()
    n.add_member(member, meta(1))
    with pytest.raises(MembershipError):
        n.add_member(member, meta(2))
    n.remove_member(member, meta(3))
    with pytest.raises(MembershipError):
        n.remove_member(member, meta(4))
    assert then_events(n) == ["MemberAdded", "MemberRemoved"]


def test_contributions_add_up_and_evaluations_use_the_outcome_formula() -> None:
    n = joined("active")
    n.log_contribution(12.5, meta(1))
    n.log_contribution(7.5, meta(2), outcome="report")
    n.evaluate({"influence": 10, "efficiency": 0.1}, meta(3))
    assert n.effort_hours == 20.0
    assert n.last_outcome == 1.0
    with pytest.raises(InvalidOutcomeFactor):
        n.evaluate({"influence": 3}, meta(4))


def test_nothing_is_recorded_after_leaving() -> None:
    n = joined("active")
    n.leave("best_before_passed", meta(100))
    n.collect_events()
    with pytest.raises(AggregateEnded):
        n.log_contribution(1, meta(101))
    assert n.left_reason == "best_before_passed"
