"""What the trust model reads and writes: happenings in, states and points out.

Plain frozen dataclasses that round-trip through JSON, plus the small time and number
helpers the model and its types share.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from domain.timeline import check_aware

if TYPE_CHECKING:
    from domain.trust_params import TrustParameters

Kind = Literal["opened", "contact", "interest", "joint_activity", "evaluation", "steward_changed"]
Phase = Literal["interest", "trust", "commitment"]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
DIRECTIONS = ("inbound", "outbound")
SECONDS_PER_DAY = 86_400.0


@dataclass(frozen=True)
class Happening:
    """What the model sees of one event."""

    event_id: str
    at: datetime  # when it happened (occurred_at), timezone-aware
    kind: Kind
    direction: Literal["inbound", "outbound"] | None = None  # inbound: they approach us
    strength: int | None = None  # interest: 1..3
    our_hours: float = 0.0
    their_hours: float = 0.0
    outcome: float | None = None  # evaluation: the outcome formula, 0.001 .. 1000

    def __post_init__(self) -> None:
        check_aware(self.at, "at")
        if self.kind not in KINDS:
            raise ValueError(f"unknown kind {self.kind!r}; expected one of {', '.join(KINDS)}")
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise ValueError(f"direction must be inbound or outbound, not {self.direction!r}")
        if self.kind in ("contact", "interest") and self.direction is None:
            raise ValueError(f"a {self.kind} needs a direction")
        if self.kind == "interest" and self.strength not in (1, 2, 3):
            raise ValueError(f"interest strength must be 1, 2 or 3, not {self.strength!r}")
        for hours in (self.our_hours, self.their_hours):
            if not (math.isfinite(hours) and hours >= 0):
                raise ValueError(f"effort hours must be finite and not negative, not {hours!r}")
        if self.kind == "evaluation" and not (
            self.outcome is not None and math.isfinite(self.outcome) and self.outcome > 0
        ):
            raise ValueError(f"an evaluation needs a positive outcome, not {self.outcome!r}")


@dataclass(frozen=True)
class TrustState:
    """The fold state. Stored as JSON, so it round-trips through to_dict/from_dict."""

    opened_at: datetime
    as_of: datetime
    inbound_interest: float  # 0..1, their interest in us
    outbound_interest: float  # 0..1, our interest in them
    org_trust: float  # the organisation's part of trust, kept across steward changes
    personal_trust: float  # the current steward's own part
    familiarity: float  # what contacts and interest alone add, never above a low ceiling
    attention: float  # 0..1, recency of contact
    last_contact_at: datetime | None
    last_joint_activity_at: datetime | None

    @property
    def trust(self) -> float:
        # The age cap is applied when trust is gained, so the sum never needs it here;
        # rounding only removes float noise from the addition.
        return round(min(1.0, self.familiarity + self.org_trust + self.personal_trust), 12)

    @property
    def mutual_interest(self) -> float:
        return min(self.inbound_interest, self.outbound_interest)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: to_json_value(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrustState:
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = data[f.name]
            if f.name in _TIMES:
                values[f.name] = None if raw is None else parse_time(raw, f.name)
            else:
                values[f.name] = float(raw)
        return cls(**values)


_TIMES = frozenset({"opened_at", "as_of", "last_contact_at", "last_joint_activity_at"})


@dataclass(frozen=True)
class TrustPoint:
    """One row of the trajectory, as a read model stores it."""

    at: datetime
    inbound_interest: float
    outbound_interest: float
    mutual_interest: float  # the weaker side: one-sided interest is not enough
    trust: float
    attention: float
    phase: Phase
    moved_by: tuple[str, ...]  # the ids of the events that moved it; () for an as_of point
    model_version: str

    def to_dict(self) -> dict[str, Any]:
        return {f.name: to_json_value(getattr(self, f.name)) for f in fields(self)}


# Small helpers -------------------------------------------------------------------------


def saturate(value: float, gain: float) -> float:
    """x <- x + g(1 - x): each gain closes a share of the gap, so 1 is never passed."""
    return value + gain * (1.0 - value)


def remaining(days: float, half_life_days: float) -> float:
    return math.exp(-math.log(2.0) * days / half_life_days)


def days_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / SECONDS_PER_DAY


@cache
def _numeric_fields() -> tuple[str, ...]:
    return tuple(f.name for f in fields(TrustState) if f.name not in _TIMES)


def rounded(state: TrustState, params: TrustParameters) -> TrustState:
    # Called for every event a projection or rebuild folds: the field list is looked up once.
    numbers = {name: round(getattr(state, name), params.decimals) for name in _numeric_fields()}
    return replace(state, **numbers)


def later(a: datetime | None, b: datetime) -> datetime:
    b = utc(b)
    return b if a is None or b > a else a


def utc(moment: datetime) -> datetime:
    # One offset everywhere, so the same instant always serialises to the same string.
    return moment.astimezone(UTC)


def parse_time(text: str, name: str) -> datetime:
    moment = datetime.fromisoformat(text)
    check_aware(moment, name)
    return moment


def to_json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value
