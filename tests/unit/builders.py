"""Given-when-then helpers for pure domain tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from domain.lifecycle import PartnershipFacts
from domain.network import Network
from domain.partnership import Partnership
from domain.values import EventMeta, Importance, Partner, Stage

T0 = datetime(2024, 1, 1, 9, 0, tzinfo=UTC)


def meta(days: float = 0, *, recorded_days: float | None = None, actor: str = "tester") -> EventMeta:
    occurred = T0 + timedelta(days=days)
    recorded = T0 + timedelta(days=recorded_days if recorded_days is not None else max(days, 0) + 1000)
    return EventMeta(occurred_at=occurred, recorded_at=recorded, actor=actor, source="api")


def opened(steward: str = "alice", owner_unit: str = "research") -> Partnership:
    partner = Partner(name="Acme Oy", kind="organisation", roles=("customer", "researcher"))
    partnership = Partnership.open(partner, owner_unit, steward, meta())
    partnership.collect_events()
    return partnership


def joined(activity: str = "passive", purposes: tuple[str, ...] = ("information_sharing",)) -> Network:
    network = Network.join(
        "Health data forum", purposes, "member", activity, None, meta(), owner_unit="research", steward="alice"
    )
    network.collect_events()
    return network


def then_events(aggregate: Any) -> list[str]:
    return [type(e).__name__ for e in aggregate.collect_events()]


def maintained_facts(as_of: datetime, **changes: Any) -> PartnershipFacts:
    """A healthy '-'/'-' partnership as of ``as_of`` (cadence 180 days, budget 40 h,
    maintain): opened 400 days before (version 1), segmented 30 days before (3), moved to
    maintain 300 days before (4), contacted the day before (9); no effort, evaluations or
    interest recorded."""

    def ago(days: float) -> datetime:
        return as_of - timedelta(days=days)

    base = PartnershipFacts(
        partnership_id="p1",
        partner_name="Acme Oy",
        owner_unit="research",
        steward="alice",
        stage=Stage.MAINTAIN,
        stage_since=ago(300),
        opened_at=ago(400),
        last_contact_at=ago(1),
        last_contact_version=9,
        segment_now=Importance.LOW,
        segment_future=Importance.LOW,
        segment_version=3,
        segment_at=ago(30),
        stage_version=4,
        tenure_version=1,
    )
    return replace(base, **changes)
