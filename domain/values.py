"""Value types shared by the aggregates and the contract."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, field_validator


def check_storable(text: str) -> str:
    """Refuses what PostgreSQL ``text`` and ``jsonb`` cannot hold: the NUL character and
    lone UTF-16 surrogates. Accepted once, such a string would stop every later step
    (projections, audit search) for good, since stored events are immutable."""
    if "\x00" in text:
        raise ValueError("must not contain the NUL character (U+0000)")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:
        raise ValueError(f"must not contain a lone surrogate ({text[error.start]!r})") from None
    return text


def printable(text: str) -> str:
    """The text with NUL and lone surrogates shown as escapes: safe to echo back in an
    error, a log line or a Kafka header, whatever a client sent."""
    return text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")


Storable = AfterValidator(check_storable)
Name = Annotated[str, Field(min_length=1, max_length=200), Storable]


class Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartnerKind(StrEnum):
    ORGANISATION = "organisation"
    PERSON = "person"
    GROUP = "group"


class Role(StrEnum):
    CUSTOMER = "customer"
    FUNDER = "funder"
    USER = "user"
    RESEARCHER = "researcher"
    AUTHORITY = "authority"
    SUPPLIER = "supplier"
    NETWORK = "network"
    OTHER = "other"


class Channel(StrEnum):
    MEETING = "meeting"
    CALL = "call"
    EMAIL = "email"
    MESSAGE = "message"
    VISIT = "visit"
    EVENT = "event"


class Direction(StrEnum):
    INBOUND = "inbound"  # they show interest in us / they contacted us
    OUTBOUND = "outbound"  # we show interest in them / we contacted them


class ActivityKind(StrEnum):
    PROJECT = "project"
    WORKSHOP = "workshop"
    PILOT = "pilot"
    FUNDING_BID = "funding_bid"
    PUBLICATION = "publication"
    EVENT = "event"
    OTHER = "other"


class Importance(StrEnum):
    """One shared, few-valued scale: everyone segments the same way."""

    VERY_LOW = "--"
    LOW = "-"
    HIGH = "+"
    VERY_HIGH = "++"

    @property
    def rank(self) -> int:
        return list(Importance).index(self)


class TransferReason(StrEnum):
    REASSIGNMENT = "reassignment"
    STEWARD_LEFT = "steward_left"
    REORGANISATION = "reorganisation"
    OTHER = "other"


class Stage(StrEnum):
    ANALYSE = "analyse"
    PRIORITISE = "prioritise"
    MAINTAIN = "maintain"
    MANAGE = "manage"
    WIND_DOWN = "wind_down"
    ENDED = "ended"


class NetworkPurpose(StrEnum):
    COMPETITIVENESS = "competitiveness"
    SHARED_GOAL = "shared_goal"
    MANDATED = "mandated"
    INFLUENCE = "influence"
    COMPETENCE = "competence"
    INFORMATION_SHARING = "information_sharing"
    FUNDING = "funding"
    NEW_PERSPECTIVES = "new_perspectives"


class NetworkRole(StrEnum):
    LEADER = "leader"
    MEMBER = "member"
    OBSERVER = "observer"


class NetworkActivity(StrEnum):
    ACTIVE = "active"
    PASSIVE = "passive"


class LeaveReason(StrEnum):
    LOW_EFFICIENCY = "low_efficiency"
    BEST_BEFORE_PASSED = "best_before_passed"
    UNFAIR = "unfair"
    AMBITION_MISMATCH = "ambition_mismatch"
    MANDATE_ENDED = "mandate_ended"
    OTHER = "other"


class Partner(Value):
    name: Name
    kind: PartnerKind
    roles: tuple[Role, ...] = Field(min_length=1)

    @field_validator("roles")
    @classmethod
    def _roles_are_distinct(cls, roles: tuple[Role, ...]) -> tuple[Role, ...]:
        if len(set(roles)) != len(roles):
            raise ValueError("roles must not repeat")
        return roles


class Segment(Value):
    now: Importance
    future: Importance

    @property
    def rising(self) -> bool:
        return self.future.rank > self.now.rank


# The outcome formula's factor values: poor, adequate, excellent (a log scale).
OUTCOME_FACTOR_VALUES = (0.1, 1.0, 10.0)


def geometric_mean(values: Sequence[float]) -> float:
    # Outcomes multiply on a log scale (0.1, 1, 10), so their average is geometric.
    return math.exp(sum(math.log(v) for v in values) / len(values))


def outcome_of(factors: dict[str, float]) -> float:
    """The outcome formula: the product of the factors, rounded to the scale's grain."""
    product = 1.0
    for value in factors.values():
        product *= value
    # Products of 0.1/1/10 are powers of ten; rounding removes float noise (0.1*10).
    return float(f"{product:.10g}")


class Tenure(Value):
    """An owning unit and its steward, from a moment in valid time onwards."""

    owner_unit: Name
    steward: Name
    since: AwareDatetime


class EventMeta(Value):
    """Who recorded what, when it happened and when we learned of it."""

    occurred_at: AwareDatetime
    recorded_at: AwareDatetime
    actor: Name
    on_behalf_of: Name | None = None
    source: Literal["api", "kafka"]
    command_id: Annotated[str, Storable] | None = None


def later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a
