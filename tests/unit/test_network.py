"""Network rules: ownership, membership, activation of dormant networks and the needs
they were activated for, members' contributions, best-before revisions, leaving."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from domain.errors import (
    ActivationError,
    AggregateEnded,
    InvalidOutcomeFactor,
    MemberEnded,
    MembershipError,
    NoOpenActivation,
    NotAMember,
    NothingChanged,
    UnknownMember,
)
from domain.network import Network
from domain.values import Activator, NetworkActivity, Stage
from tests.unit.builders import T0, joined, meta, opened, then_events


def with_member(activity: str = "passive") -> tuple[Network, uuid.UUID]:
    n = joined(activity)
    partner = opened()
    n.add_member(partner.id, meta(1), member=partner)
    n.collect_events()
    return n, partner.id


# Ownership ------------------------------------------------------------------------------


def test_a_join_names_the_owner_from_the_moment_it_was_joined() -> None:
    n = joined()
    assert (n.owner_unit, n.steward) == ("research", "alice")
    assert n.owner_at(meta(-1).occurred_at) is None
    tenure = n.owner_at(meta(0).occurred_at)
    assert tenure is not None and (tenure.owner_unit, tenure.since) == ("research", T0)


def test_ownership_moves_in_valid_time_and_a_transfer_to_the_owner_then_changes_nothing() -> None:
    n = joined()
    n.transfer_ownership("innovation", "bob", "reassignment", meta(100))
    n.transfer_ownership("research", "carol", "steward_left", meta(50))  # back-dated: lands before bob's
    assert then_events(n) == ["OwnershipTransferred", "OwnershipTransferred"]
    assert [t.steward for t in n.tenures] == ["alice", "carol", "bob"]
    assert (n.owner_unit, n.steward) == ("innovation", "bob")
    with pytest.raises(NothingChanged):
        n.transfer_ownership("research", "carol", "other", meta(60))  # carol held it on day 60
    n.transfer_ownership("research", "carol", "other", meta(120))  # but not on day 120


def test_a_network_joined_before_joins_named_an_owner_has_none_until_its_first_transfer() -> None:
    old = Network.Joined(
        originator_id=uuid.uuid4(),
        originator_version=1,
        timestamp=T0,
        originator_topic="domain.network:Network",
        meta=meta(),
        name="Old forum",
        purposes=("influence",),
        role="member",
        activity="active",
    )
    n = old.mutate(None)
    assert n is not None and (n.owner_unit, n.steward, n.tenures) == (None, None, [])
    n.transfer_ownership("research", "alice", "other", meta(5))
    assert n.owner_unit == "research"


# Membership -----------------------------------------------------------------------------


def test_members_are_added_once_and_removed_only_if_present_and_may_come_back() -> None:
    n = joined()
    partner = opened()
    n.add_member(partner.id, meta(1), member=partner)
    with pytest.raises(MembershipError):
        n.add_member(partner.id, meta(2), member=partner)
    n.remove_member(partner.id, meta(3))
    with pytest.raises(MembershipError):
        n.remove_member(partner.id, meta(4))
    n.add_member(partner.id, meta(5), member=partner)
    assert then_events(n) == ["MemberAdded", "MemberRemoved", "MemberAdded"]
    assert n.members == {partner.id}


def test_a_member_must_be_a_partnership_we_know() -> None:
    n = joined()
    with pytest.raises(UnknownMember) as refused:
        n.add_member(uuid.uuid4(), meta(1), member=None)
    assert refused.value.code == "unknown_member"
    other = joined()  # a network is no partnership
    with pytest.raises(UnknownMember):
        n.add_member(other.id, meta(1), member=other)
    partner = opened()
    with pytest.raises(UnknownMember):  # the aggregate supplied must be the one named
        n.add_member(uuid.uuid4(), meta(1), member=partner)


def test_a_partnership_that_had_ended_by_then_cannot_be_added() -> None:
    n = joined()
    partner = opened()
    for day, stage in ((10, Stage.PRIORITISE), (20, Stage.WIND_DOWN), (30, Stage.ENDED)):
        partner.change_stage(stage, "no_fit", meta(day))
    with pytest.raises(MemberEnded) as refused:
        n.add_member(partner.id, meta(30), member=partner)
    assert refused.value.code == "member_ended"
    n.add_member(partner.id, meta(29), member=partner)  # back-dated to when it was open
    assert then_events(n) == ["MemberAdded"]


# Activation and needs -------------------------------------------------------------------


def test_a_passive_network_is_activated_for_a_need() -> None:
    n = joined("passive")
    n.activate("joint EU bid", meta(30))
    assert then_events(n) == ["Activated"]
    assert n.activity == NetworkActivity.ACTIVE and n.activation_open
    with pytest.raises(NothingChanged):
        n.activate("again", meta(31))


def test_a_member_may_activate_it_and_must_be_named_and_be_a_member() -> None:
    n, member = with_member()
    with pytest.raises(ActivationError):
        n.activate("their bid", meta(2), activated_by=Activator.MEMBER)  # which member?
    with pytest.raises(ActivationError):
        n.activate("our bid", meta(2), by_partnership_id=member)  # us, naming a member
    with pytest.raises(NotAMember):
        n.activate("their bid", meta(2), activated_by=Activator.MEMBER, by_partnership_id=uuid.uuid4())
    n.activate("their bid", meta(2), activated_by=Activator.MEMBER, by_partnership_id=member)
    (event,) = n.collect_events()
    assert isinstance(event, Network.Activated)
    assert (event.activated_by, event.by_partnership_id) == ("member", member)


def test_need_met_closes_the_open_activation_and_needs_one() -> None:
    n = joined("passive")
    with pytest.raises(NoOpenActivation) as refused:
        n.close_activation("met", meta(1))
    assert refused.value.code == "no_open_activation"
    n.activate("joint EU bid", meta(10))
    n.park(meta(40))  # parking leaves the question of the need open
    n.close_activation("partly", meta(50), note="funded, half the budget")
    assert not n.activation_open
    with pytest.raises(NoOpenActivation):
        n.close_activation("met", meta(51))
    assert then_events(n) == ["Activated", "Parked", "NeedMet"]


def test_old_activations_were_ours() -> None:
    n = joined("passive")
    n.activate("bid", meta(1))
    stored = n.collect_events()[0].model_dump()
    del stored["activated_by"], stored["by_partnership_id"]
    assert Network.Activated(**stored).activated_by == Activator.US


# Contributions, evaluations, best before -------------------------------------------------


def test_contributions_add_up_and_evaluations_use_the_outcome_formula() -> None:
    n = joined("active")
    n.log_contribution(12.5, meta(1))
    n.log_contribution(7.5, meta(2), outcome="report")
    n.evaluate({"influence": 10, "efficiency": 0.1}, meta(3))
    assert n.effort_hours == 20.0
    assert n.last_outcome == 1.0
    with pytest.raises(InvalidOutcomeFactor):
        n.evaluate({"influence": 3}, meta(4))


def test_only_members_contributions_are_logged() -> None:
    n, member = with_member("active")
    n.log_member_contribution(member, 6.0, "excellent", meta(2))
    (event,) = n.collect_events()
    assert isinstance(event, Network.MemberContributionLogged)
    assert (event.effort_hours, event.outcome.factor) == (6.0, 10.0)
    with pytest.raises(NotAMember) as refused:
        n.log_member_contribution(uuid.uuid4(), 1.0, "poor", meta(3))
    assert refused.value.code == "not_a_member"
    n.remove_member(member, meta(4))
    with pytest.raises(NotAMember):
        n.log_member_contribution(member, 1.0, "poor", meta(5))


def test_best_before_is_revised_with_a_reason_and_may_be_cleared() -> None:
    n = joined("active")
    n.revise_best_before(date(2026, 6, 30), "the steering group extended the task", meta(1))
    assert n.best_before == date(2026, 6, 30)
    with pytest.raises(NothingChanged):
        n.revise_best_before(date(2026, 6, 30), "again", meta(2))
    n.revise_best_before(None, "it became a standing network", meta(3))
    assert n.best_before is None
    with pytest.raises(NothingChanged):
        n.revise_best_before(None, "still none", meta(4))
    assert then_events(n) == ["BestBeforeRevised", "BestBeforeRevised"]


def test_nothing_is_recorded_after_leaving() -> None:
    n = joined("active")
    n.leave("best_before_passed", meta(100))
    n.collect_events()
    with pytest.raises(AggregateEnded):
        n.log_contribution(1, meta(101))
    with pytest.raises(AggregateEnded):
        n.transfer_ownership("sales", "dan", "other", meta(101))
    assert n.left_reason == "best_before_passed"
