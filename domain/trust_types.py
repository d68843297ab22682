"""What the trust model reads and writes: happenings in, states and points out.

Plain frozen dataclasses that round-trip through JSON, plus the small time and number
helpers the model and its types share.

A projection catch-up or rebuild runs these once per event, so the hot paths spell their
fields out instead of going through ``dataclasses.fields``/``replace``: the results are
the same, field by field and float by float.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from domain.timeline import check_aware

if TYPE_CHECKING:
    from domain.trust_params import TrustParameters

Kind = Literal["opened", "contact", "interest", "joint_activity", "evaluation", "steward_changed"]
Phase = Literal["interest", "trust", "commitment"]
KINDS: tuple[str, ...] = Kind.__args__  # type: ignore[attr-defined]
DIRECTIONS = ("inbound", "outbound")
SECONDS_PER_DAY = 86_400.0
Frozen = TypeVar("Frozen")


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
    """The fold state. Stored as JSON, so it round-trips through to_dict/from_dict.

    Hot paths build it with assembled(), which skips __init__: keep it free of
    __post_init__ and field defaults."""

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
        # In field order, like every stored row so far.
        return {
            "opened_at": to_json_value(self.opened_at),
            "as_of": to_json_value(self.as_of),
            "inbound_interest": self.inbound_interest,
            "outbound_interest": self.outbound_interest,
            "org_trust": self.org_trust,
            "personal_trust": self.personal_trust,
            "familiarity": self.familiarity,
            "attention": self.attention,
            "last_contact_at": to_json_value(self.last_contact_at),
            "last_joint_activity_at": to_json_value(self.last_joint_activity_at),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrustState:
        # Read in field order, so a broken row names the same field as it always did.
        return assembled(
            cls,
            {
                "opened_at": _time_from_json(data["opened_at"], "opened_at"),
                "as_of": _time_from_json(data["as_of"], "as_of"),
                "inbound_interest": float(data["inbound_interest"]),
                "outbound_interest": float(data["outbound_interest"]),
                "org_trust": float(data["org_trust"]),
                "personal_trust": float(data["personal_trust"]),
                "familiarity": float(data["familiarity"]),
                "attention": float(data["attention"]),
                "last_contact_at": _time_from_json(data["last_contact_at"], "last_contact_at"),
                "last_joint_activity_at": _time_from_json(data["last_joint_activity_at"], "last_joint_activity_at"),
            },
        )


@dataclass(slots=True)
class DraftState:
    """A TrustState while one step or decay changes it: a mutable working copy, so a step
    builds a single frozen TrustState at the end instead of one per change. Private to
    the trust model: never stored, never returned."""

    opened_at: datetime
    as_of: datetime
    inbound_interest: float
    outbound_interest: float
    org_trust: float
    personal_trust: float
    familiarity: float
    attention: float
    last_contact_at: datetime | None
    last_joint_activity_at: datetime | None

    @classmethod
    def of(cls, state: TrustState) -> DraftState:
        return cls(
            state.opened_at,
            state.as_of,
            state.inbound_interest,
            state.outbound_interest,
            state.org_trust,
            state.personal_trust,
            state.familiarity,
            state.attention,
            state.last_contact_at,
            state.last_joint_activity_at,
        )

    def round_numbers(self, decimals: int) -> None:
        """Rounds every number as stored, so replaying the same history gives the same rows."""
        self.inbound_interest = round(self.inbound_interest, decimals)
        self.outbound_interest = round(self.outbound_interest, decimals)
        self.org_trust = round(self.org_trust, decimals)
        self.personal_trust = round(self.personal_trust, decimals)
        self.familiarity = round(self.familiarity, decimals)
        self.attention = round(self.attention, decimals)

    def frozen(self) -> TrustState:
        return assembled(
            TrustState,
            {
                "opened_at": self.opened_at,
                "as_of": self.as_of,
                "inbound_interest": self.inbound_interest,
                "outbound_interest": self.outbound_interest,
                "org_trust": self.org_trust,
                "personal_trust": self.personal_trust,
                "familiarity": self.familiarity,
                "attention": self.attention,
                "last_contact_at": self.last_contact_at,
                "last_joint_activity_at": self.last_joint_activity_at,
            },
        )


@dataclass(frozen=True)
class TrustPoint:
    """One row of the trajectory, as a read model stores it.

    Built with assembled() once per folded event: keep it free of __post_init__ and
    field defaults."""

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
        return {
            "at": to_json_value(self.at),
            "inbound_interest": self.inbound_interest,
            "outbound_interest": self.outbound_interest,
            "mutual_interest": self.mutual_interest,
            "trust": self.trust,
            "attention": self.attention,
            "phase": self.phase,
            "moved_by": to_json_value(self.moved_by),
            "model_version": self.model_version,
        }


# Small helpers -------------------------------------------------------------------------


def assembled(cls: type[Frozen], fields: dict[str, Any]) -> Frozen:
    """An instance of the frozen dataclass ``cls`` holding ``fields``, every one of them,
    made without calling its __init__. A frozen __init__ sets each field through
    object.__setattr__, and for TrustState and TrustPoint that was a large part of every
    folded event; the instance is the same (equal, same hash, repr and pickle). It skips
    __post_init__ and defaults, so only for classes that have neither."""
    instance = object.__new__(cls)
    object.__setattr__(instance, "__dict__", fields)
    return instance


def saturate(value: float, gain: float) -> float:
    """x <- x + g(1 - x): each gain closes a share of the gap, so 1 is never passed."""
    return value + gain * (1.0 - value)


_MINUS_LN2 = -math.log(2.0)  # the same float the formula below always computed


def remaining(days: float, half_life_days: float) -> float:
    # Kept as (-ln 2 * days) / half-life: folding ln 2 / half-life into one constant
    # would round differently and change stored numbers.
    return math.exp(_MINUS_LN2 * days / half_life_days)


def days_between(start: datetime, end: datetime) -> float:
    return (end - start).total_seconds() / SECONDS_PER_DAY


def rounded(state: TrustState, params: TrustParameters) -> TrustState:
    """The state with every number rounded as stored (the fold rounds its drafts itself)."""
    draft = DraftState.of(state)
    draft.round_numbers(params.decimals)
    return draft.frozen()


def later(a: datetime | None, b: datetime) -> datetime:
    b = utc(b)
    return b if a is None or b > a else a


def utc(moment: datetime) -> datetime:
    # One offset everywhere, so the same instant always serialises to the same string.
    # Most moments already are UTC, and astimezone would return them unchanged anyway.
    return moment if moment.tzinfo is UTC else moment.astimezone(UTC)


def parse_time(text: str, name: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is not UTC:  # stored times are UTC, and UTC is always aware
        check_aware(moment, name)
    return moment


def _time_from_json(raw: str | None, name: str) -> datetime | None:
    return None if raw is None else parse_time(raw, name)


def to_json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, tuple):
        return list(value)
    return value
