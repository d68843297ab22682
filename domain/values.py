"""Value types shared by the aggregates and the contract."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, Strict


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


@dataclass(frozen=True)
class Personal:
    """Marks a stored field as personal data, sealed with its data subject's key.

    ``person``: the field names a person, who is their own subject (``person:<name>``);
    ``aggregate``: free text about the aggregate, whose subject it is (``partnership:<id>``
    or ``network:<id>``). ``only_for_persons``: only when the partner is a person."""

    subject: Literal["person", "aggregate"]
    only_for_persons: bool = False


# Stored fields: lenient, since yesterday's events must load whatever today's rules are.
Name = Annotated[str, Field(min_length=1, max_length=200)]
PersonName = Annotated[str, Personal("person")]
FreeText = Annotated[str, Personal("aggregate")]

# What a command may carry: the contract validates commands with these (strict numbers;
# text that PostgreSQL can store, refused where it sits so the error names the place).
StorableName = Annotated[Name, AfterValidator(check_storable)]
Text = Annotated[str, Field(max_length=4000), AfterValidator(check_storable)]
Factor = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Factors = Annotated[dict[StorableName, Factor], Field(min_length=1, max_length=20)]
Hours = Annotated[float, Strict(), Field(ge=0, le=100_000, allow_inf_nan=False)]
Minutes = Annotated[int, Strict(), Field(ge=0, le=100_000)]
Strength = Annotated[int, Strict(), Field(ge=1, le=3)]
Participants = Annotated[tuple[StorableName, ...], Field(min_length=1, max_length=50)]
ReasonCode = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9_.-]+$")]


class Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PartnerKind(StrEnum):
    ORGANISATION = "organisation"
    PERSON = "person"
    GROUP = "group"


class Role(StrEnum):
    CUSTOMER = "customer"
    ONE_OFF_CUSTOMER = "one_off_customer"  # bought once; no relationship is expected to follow
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


Purposes = Annotated[tuple[NetworkPurpose, ...], Field(min_length=1)]


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
    STALLED = "stalled"  # collaboration stopped: nobody has contributed for long
    OTHER = "other"


class Activator(StrEnum):
    """Who woke a dormant network for a need: we did, or another member did."""

    US = "us"
    MEMBER = "member"


class NeedOutcome(StrEnum):
    """How well the need a network was activated for was met."""

    MET = "met"
    PARTLY = "partly"
    NOT_MET = "not_met"


class ContributionOutcome(StrEnum):
    """A member's contribution judged on the outcome formula's scale."""

    POOR = "poor"
    ADEQUATE = "adequate"
    EXCELLENT = "excellent"

    @property
    def factor(self) -> float:
        # The same 0.1 / 1 / 10 as an evaluation's factors, so the two can be compared.
        return OUTCOME_FACTOR_VALUES[list(ContributionOutcome).index(self)]


def _distinct(roles: tuple[Role, ...]) -> tuple[Role, ...]:
    if len(set(roles)) != len(roles):
        raise ValueError("roles must not repeat")
    return roles


# A partner plays one role or several (a user may also develop the product with us).
Roles = Annotated[tuple[Role, ...], Field(min_length=1), AfterValidator(_distinct)]


# An e-mail domain of the partner's people ("acme.fi"): how a calendar invitation is
# matched to the partner without keeping anyone's address.
MailDomain = Annotated[
    str,
    Field(
        min_length=3,
        max_length=253,
        pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$",
    ),
]


class Partner(Value):
    name: Annotated[Name, Personal("aggregate", only_for_persons=True)]
    kind: PartnerKind
    roles: Roles
    # For organisations and groups; a person partner's own address would be personal data.
    domains: Annotated[tuple[MailDomain, ...], Field(max_length=20)] = ()


class Segment(Value):
    now: Importance
    future: Importance

    @property
    def rising(self) -> bool:
        return self.future.rank > self.now.rank


# The outcome formula's factor values: poor, adequate, excellent (a log scale).
OUTCOME_FACTOR_VALUES = (0.1, 1.0, 10.0)


def geometric_mean(values: Sequence[float]) -> float:
    """The geometric mean of positive numbers (at least one), unrounded.

    Outcomes multiply on a log scale (0.1, 1, 10), so their average is geometric. Taken in
    base ten with an exact sum, so a mean of powers of ten is that power exactly."""
    if not values:
        raise ValueError("the geometric mean of nothing is undefined")
    return float(10 ** (math.fsum(math.log10(v) for v in values) / len(values)))


# Relative: a ratio within this of the factor is a jump (float noise in 1 / 0.01).
JUMP_TOLERANCE = 1e-9


def quality_jumps(outcomes: Sequence[float], factor: float) -> int:
    """How often consecutive outcomes (in time order) differ by at least ``factor`` either
    way. Compared as ratios with a tolerance, so float noise cannot hide a jump: an
    unrounded 0.1 * 0.1 is 0.010000000000000002, and 1 over it is just under 100."""
    threshold = factor * (1 - JUMP_TOLERANCE)
    return sum(1 for a, b in zip(outcomes, outcomes[1:], strict=False) if max(a, b) / min(a, b) >= threshold)


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
    on_behalf_of: Annotated[Name, Personal("person")] | None = None
    source: Literal["api", "kafka"]
    command_id: str | None = None


def later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a
