"""Given-when-then helpers for pure domain tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from domain.network import Network
from domain.partnership import Partnership
from domain.values import EventMeta, Partner

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
