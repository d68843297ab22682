"""Snapshots restore exactly the state a replay builds, and the aggregate cache hands out
private copies, stays bounded and forgets everything when an erasure happened."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from domain.base import Aggregate
from domain.errors import DomainError
from domain.network import Network
from domain.partnership import Partnership
from domain.values import (
    Activator,
    Channel,
    ContributionOutcome,
    Direction,
    Importance,
    LeaveReason,
    NeedOutcome,
    NetworkActivity,
    NetworkPurpose,
    NetworkRole,
    Role,
    Stage,
    TransferReason,
)
from services.aggregate_cache import AggregateCache
from services.snapshots import can_snapshot, restore, take
from tests.unit.builders import meta, opened

PEOPLE = ["alice", "bob", "carol"]


def round_trip(aggregate: Aggregate) -> Any:
    snapshot = take(aggregate, keys=None)
    assert snapshot is not None
    return restore(snapshot._asdict(), keys=None)


def replay(aggregate: Aggregate, events: list[Any]) -> Any:
    rebuilt: Any = None
    for event in events:
        rebuilt = event.mutate(rebuilt)
    assert vars(rebuilt) == vars(aggregate)
    return rebuilt


PARTNERSHIP_STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("log_contact"), st.lists(st.sampled_from(PEOPLE), min_size=1, max_size=2, unique=True)),
        st.tuples(st.just("transfer_ownership"), st.sampled_from(PEOPLE)),
        st.tuples(st.just("segment_as"), st.sampled_from(["--", "-", "+", "++"])),
        st.tuples(st.just("change_roles"), st.sampled_from([("user",), ("funder", "customer")])),
        st.tuples(st.just("evaluate"), st.sampled_from([0.1, 1.0, 10.0])),
        st.tuples(st.just("change_stage"), st.sampled_from(["prioritise", "maintain", "wind_down", "ended"])),
    ),
    max_size=12,
)


def apply_partnership_step(p: Any, step: tuple[str, Any], day: int) -> None:
    name, value = step
    m = meta(day)
    if name == "log_contact":
        p.log_contact("call", "inbound", tuple(value), m, summary="notes")
    elif name == "transfer_ownership":
        p.transfer_ownership("research", value, "reassignment", m)
    elif name == "segment_as":
        p.segment_as(Importance(value), Importance(value), m)
    elif name == "change_roles":
        p.change_roles(tuple(Role(r) for r in value), m)
    elif name == "evaluate":
        p.evaluate({"fit": value}, m)
    else:
        p.change_stage(Stage(value), "progress", m)


@given(steps=PARTNERSHIP_STEPS, days=st.lists(st.integers(0, 30), min_size=12, max_size=12))
def test_a_partnership_restored_from_its_snapshot_equals_its_replay(steps: list[Any], days: list[int]) -> None:
    fresh = opened()
    fresh = type(fresh).open(fresh.partner, "research", "alice", meta())
    history: list[Any] = list(fresh.collect_events())
    for step, day in zip(steps, days, strict=False):
        try:
            apply_partnership_step(fresh, step, day)  # back-dated days included
        except DomainError:
            continue  # refused commands change nothing
        history += fresh.collect_events()
    assert can_snapshot(fresh)
    assert vars(round_trip(fresh)) == vars(replay(fresh, history))


@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("add"), st.integers(0, 3)),
            st.tuples(st.just("remove"), st.integers(0, 3)),
            st.tuples(st.just("contribute"), st.floats(0.1, 40, allow_nan=False)),
            st.tuples(st.just("activate"), st.just("")),
            st.tuples(st.just("park"), st.just("")),
            st.tuples(st.just("leave"), st.just("")),
            st.tuples(st.just("transfer"), st.sampled_from(PEOPLE)),
            st.tuples(st.just("member_activates"), st.integers(0, 3)),
            st.tuples(st.just("need_met"), st.sampled_from(["met", "partly", "not_met"])),
            st.tuples(st.just("member_contributes"), st.integers(0, 3)),
            st.tuples(st.just("revise"), st.none() | st.dates()),
        ),
        max_size=12,
    )
)
def test_a_network_restored_from_its_snapshot_equals_its_replay(steps: list[Any]) -> None:
    members = [opened() for _ in range(4)]
    network = Network.join(
        "Forum",
        (NetworkPurpose.INFORMATION_SHARING,),
        NetworkRole.MEMBER,
        NetworkActivity.PASSIVE,
        None,
        meta(),
        owner_unit="research",
        steward="alice",
    )
    history = list(network.collect_events())
    for day, (name, value) in enumerate(steps, start=1):
        m = meta(day)
        try:
            if name == "add":
                network.add_member(members[value].id, m, member=members[value])
            elif name == "remove":
                network.remove_member(members[value].id, m)
            elif name == "contribute":
                network.log_contribution(round(value, 2), m)
            elif name == "activate":
                network.activate("a need", m)
            elif name == "park":
                network.park(m)
            elif name == "transfer":
                network.transfer_ownership("innovation", value, TransferReason.REASSIGNMENT, m)
            elif name == "member_activates":
                network.activate("their need", m, Activator.MEMBER, members[value].id)
            elif name == "need_met":
                network.close_activation(NeedOutcome(value), m, note="noted")
            elif name == "member_contributes":
                network.log_member_contribution(members[value].id, 2.5, ContributionOutcome.ADEQUATE, m)
            elif name == "revise":
                network.revise_best_before(value, "re-planned", m)
            else:
                network.leave(LeaveReason.LOW_EFFICIENCY, m)
        except DomainError:
            continue
        history += network.collect_events()
    assert vars(round_trip(network)) == vars(replay(network, history))


def test_an_aggregate_whose_state_differs_from_its_model_is_not_snapshotted() -> None:
    partnership = opened()
    partnership.__dict__["something_new"] = 1  # a field added to the domain, not to the model
    assert not can_snapshot(partnership) and take(partnership, keys=None) is None


def test_the_cache_hands_out_copies_and_keeps_only_committed_state() -> None:
    cache = AggregateCache(capacity=10)
    cache.observe(0)
    partnership = opened()
    cache.put(partnership, 0, generation=0)
    copy = cache.get(partnership.id)
    assert copy is not None and copy.aggregate is not partnership
    decided = copy.aggregate
    assert isinstance(decided, Partnership)
    decided.log_contact(Channel.CALL, Direction.INBOUND, ("alice",), meta(1))  # a decision in progress
    cache.put(decided, 0, generation=0)  # pending events: refused
    again = cache.get(partnership.id)
    assert again is not None and isinstance(again.aggregate, Partnership)
    assert again.aggregate.version == 1 and again.aggregate.contacts == 0


def test_the_cache_is_bounded_least_recently_used_first() -> None:
    cache = AggregateCache(capacity=2)
    cache.observe(0)
    a, b, c = opened(), opened(), opened()
    cache.put(a, 0, 0)
    cache.put(b, 0, 0)
    cache.get(a.id)  # a is now the most recently used
    cache.put(c, 0, 0)
    assert cache.get(b.id) is None and cache.get(a.id) is not None and cache.get(c.id) is not None
    assert len(cache) == 2


def test_an_erasure_empties_the_cache_and_refuses_what_was_read_before_it() -> None:
    cache = AggregateCache()
    cache.observe(3)
    partnership = opened()
    cache.put(partnership, 0, generation=3)
    assert cache.observe(4)  # the generation moved: someone was erased
    assert cache.get(partnership.id) is None
    cache.put(partnership, 0, generation=3)  # loaded before the erasure: may reveal them
    assert cache.get(partnership.id) is None
    assert not cache.observe(4)
