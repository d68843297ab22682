"""Both time axes: what was true then, by what we knew then."""

from __future__ import annotations

from datetime import timedelta

from domain.history import partnership_then
from domain.values import Stage
from tests.unit.builders import T0, meta, opened


def events_with_opening() -> list:  # type: ignore[type-arg]
    from domain.partnership import Partnership
    from domain.values import Partner

    p = Partnership.open(
        Partner(name="Acme Oy", kind="organisation", roles=("customer",)), "research", "alice", meta(0, recorded_days=0)
    )
    p.log_contact("call", "inbound", ("alice",), meta(10, recorded_days=10))
    p.transfer_ownership("research", "bob", "steward_left", meta(100, recorded_days=100))
    p.change_stage(Stage.PRIORITISE, "review", meta(120, recorded_days=120))
    p.transfer_ownership("innovation", "carol", "reassignment", meta(50, recorded_days=300))
    return list(p.collect_events())


def at(days: int):  # type: ignore[no-untyped-def]
    return T0 + timedelta(days=days)


def test_a_back_dated_transfer_changes_answers_known_after_it_was_recorded_and_not_before() -> None:
    events = events_with_opening()
    assert partnership_then(events, at(60), known_at=at(200))["steward"] == "alice"  # type: ignore[index]
    assert partnership_then(events, at(60), known_at=at(400))["steward"] == "carol"  # type: ignore[index]
    assert partnership_then(events, at(150), known_at=at(400))["steward"] == "bob"  # type: ignore[index]


def test_the_state_then_counts_only_what_had_happened_then() -> None:
    events = events_with_opening()
    early = partnership_then(events, at(5), known_at=at(400))
    later = partnership_then(events, at(130), known_at=at(400))
    assert early is not None and later is not None
    assert (early["contacts"], early["stage"]) == (0, "analyse")
    assert (later["contacts"], later["stage"], later["stage_since"]) == (1, "prioritise", at(120))


def test_before_it_existed_or_before_anyone_recorded_it_there_is_nothing() -> None:
    events = events_with_opening()
    assert partnership_then(events, at(-1), known_at=at(400)) is None
    assert partnership_then(events, at(400), known_at=at(-1)) is None


def test_a_network_as_of_and_as_known() -> None:
    from domain.history import network_then
    from domain.network import Network

    n = Network.join(
        "Forum", ("influence",), "member", "passive", None, meta(0, recorded_days=0), owner_unit="u", steward="s"
    )
    partner = opened()
    member = partner.id
    n.add_member(member, meta(10, recorded_days=10), member=partner)
    n.activate("bid", meta(20, recorded_days=20))
    n.log_contribution(8, meta(30, recorded_days=200))  # reported late
    events = list(n.collect_events())
    assert network_then(events, at(15), known_at=at(400))["activity"] == "passive"  # type: ignore[index]
    assert network_then(events, at(25), known_at=at(400))["members"] == [str(member)]  # type: ignore[index]
    assert network_then(events, at(40), known_at=at(100))["effort_hours"] == 0  # type: ignore[index]
    assert network_then(events, at(40), known_at=at(300))["effort_hours"] == 8  # type: ignore[index]
    assert network_then(events, at(-1), known_at=at(300)) is None


def test_a_customer_who_bought_once_is_recorded_as_such_and_history_shows_when() -> None:
    from domain.partnership import Partnership
    from domain.values import Partner

    partner = Partner(name="Acme Oy", kind="organisation", roles=("customer",))
    partnership = Partnership.open(partner, "research", "alice", meta(0))
    partnership.change_roles(("one_off_customer",), meta(30))
    events = partnership.collect_events()
    known = T0 + timedelta(days=2000)  # the builder records a thousand days late
    before = partnership_then(events, T0 + timedelta(days=29), known)
    after = partnership_then(events, T0 + timedelta(days=31), known)
    assert before is not None and before["partner"]["roles"] == ["customer"]
    assert after is not None and after["partner"]["roles"] == ["one_off_customer"]
