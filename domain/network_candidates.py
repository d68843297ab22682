"""Networks we might join: what entry asks of us, why we would be there, which come first.

To get into a network you need competence, visibility, reliability, your own money or
resources and selective loyalty (deciding where to be active). The organisation records
each candidate with the purposes it would serve and, per requirement, whether we meet it
(``network_considered`` on the organisation). Everything below is pure: the plan
(``domain.network_plan_sections``) feeds it the networks we are in and ranks the rest.

The formulas, and why:

- **Readiness** is the mean of the five requirements, each ``met`` 1, ``partly_met`` 0.5,
  ``missing`` 0: every requirement is a door we must pass, none counts more than another,
  and a half-met one is honestly half way. It lies in [0, 1].
- **Purpose gap** of one purpose: 0 if a network we are in serves it and our course for
  that network (its decision in force, else its recommendation) is keep, activate or join;
  0.5 if the best such network is one we park (it serves less well); 1 if none serves it or
  the only ones are networks we leave or have left (soon nobody serves it).
- **Purpose fit** of a candidate is the sum of its distinct purposes' gaps: what it adds
  that we lack. A sum, not a mean, so a candidate that fills two gaps beats one that fills
  one, and a purpose we already serve well neither adds nor costs.
- **Priority** is fit × readiness: worth joining only if there is a reason *and* a way in;
  either at zero means "not now". Ties go to the better fit (why matters more than how
  easily), then readiness, then name and id, so the order is total and reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated
from uuid import NAMESPACE_URL, UUID, uuid5

from pydantic import AfterValidator, Field

from domain.names import normalise
from domain.values import NetworkPurpose, Text, Value

DECIMALS = 6  # as the network measures: equal inputs print and compare equally


class Decision(StrEnum):
    """What the organisation decides for a network in its plan (``plan_decided``)."""

    KEEP = "keep"
    ACTIVATE = "activate"
    PARK = "park"
    LEAVE = "leave"
    JOIN = "join"  # only for a candidate: the others are for networks we are in


class Readiness(StrEnum):
    MET = "met"
    PARTLY_MET = "partly_met"
    MISSING = "missing"


READINESS_WEIGHT: dict[Readiness, float] = {Readiness.MET: 1.0, Readiness.PARTLY_MET: 0.5, Readiness.MISSING: 0.0}


class EntryRequirements(Value):
    """What entry to a network requires of us, each one met, partly met or missing."""

    competence: Readiness
    visibility: Readiness
    reliability: Readiness
    own_resources: Readiness
    selective_loyalty: Readiness

    def items(self) -> list[tuple[str, Readiness]]:
        return [(name, getattr(self, name)) for name in REQUIREMENTS]


REQUIREMENTS: tuple[str, ...] = tuple(EntryRequirements.model_fields)


def _not_blank(text: str) -> str:
    if not text.strip():
        raise ValueError("must not be blank: say why")
    return text


# A decision's rationale is what an auditor reads years later: required, and not blank.
Rationale = Annotated[Text, Field(min_length=1), AfterValidator(_not_blank)]

# Our course for a network: the decision in force, else the recommendation.
COURSE_GAP: dict[str, float] = {"keep": 0.0, "activate": 0.0, "join": 0.0, "park": 0.5, "leave": 1.0, "left": 1.0}
NOT_SERVED = 1.0


def candidate_id_for(name: str) -> UUID:
    """The id a candidate gets when the sender chooses none: the same for the same name
    however written ("Nordic  AI forum" and "nordic ai Forum"), so considering it again
    updates it."""
    return uuid5(NAMESPACE_URL, f"verkosto:network-candidate:{normalise(name)}")


def readiness(requirements: EntryRequirements) -> float:
    weights = [READINESS_WEIGHT[level] for _, level in requirements.items()]
    return round(sum(weights) / len(weights), DECIMALS)


def unmet(requirements: EntryRequirements) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(missing, partly met) requirement names, in the source's order."""
    missing = tuple(name for name, level in requirements.items() if level == Readiness.MISSING)
    partly = tuple(name for name, level in requirements.items() if level == Readiness.PARTLY_MET)
    return missing, partly


def purpose_gaps(networks: Iterable[tuple[Iterable[str], str]]) -> dict[str, float]:
    """Every purpose's gap, given each network we are or were in as (purposes, course)."""
    gaps = {p.value: NOT_SERVED for p in NetworkPurpose}
    for purposes, course in networks:
        for purpose in purposes:
            gaps[purpose] = min(gaps.get(purpose, NOT_SERVED), COURSE_GAP.get(course, NOT_SERVED))
    return gaps


def purpose_fit(purposes: Iterable[str], gaps: dict[str, float]) -> float:
    return round(sum(gaps.get(p, NOT_SERVED) for p in set(purposes)), DECIMALS)


@dataclass(frozen=True)
class CandidateScore:
    candidate_id: str
    name: str
    purpose_fit: float
    readiness: float
    priority: float
    missing: tuple[str, ...]
    partly_met: tuple[str, ...]


def score(
    candidate_id: str, name: str, purposes: Iterable[str], requirements: EntryRequirements, gaps: dict[str, float]
) -> CandidateScore:
    fit, ready = purpose_fit(purposes, gaps), readiness(requirements)
    missing, partly = unmet(requirements)
    return CandidateScore(candidate_id, name, fit, ready, round(fit * ready, DECIMALS), missing, partly)


def rank_key(s: CandidateScore) -> tuple[float, float, float, str, str]:
    return -s.priority, -s.purpose_fit, -s.readiness, normalise(s.name), s.candidate_id


def ranked(scores: Iterable[CandidateScore]) -> list[CandidateScore]:
    """Best first: priority, then fit, then readiness, then name and id."""
    return sorted(scores, key=rank_key)
