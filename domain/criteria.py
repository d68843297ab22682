"""The shared criteria catalogue: the same few criteria for everyone.

The source notes insist that everyone evaluates with the same, few criteria, so that
outcomes compare across partners. The organisation defines the catalogue as an event
(``criteria_defined``, see ``domain/organisation.py``); from then on an evaluation scores
each of its criteria or says which it skips and why (``check_scores``). Evaluations
recorded before any catalogue existed keep their free factors and stay valid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated

from pydantic import AfterValidator, AwareDatetime, Field, Strict

from domain.errors import CriteriaNotScored, InvalidCatalogue, ScoredAndSkipped, TooManyCriteria, UnknownCriterion
from domain.values import FreeText, StorableName, Text, Value, check_storable

MAX_CRITERIA = 7  # the notes: keep them few

CriterionName = Annotated[str, Strict(), Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")]
# What the organisation means by a criterion: organisational text about no person, so it
# is not marked Personal (never sealed, never erased).
Description = Annotated[str, Field(min_length=1, max_length=400), AfterValidator(check_storable)]
# What an evaluation command may skip: criterion name -> why (as many as it may score).
Skips = Annotated[dict[StorableName, Text], Field(max_length=20)]


class Criterion(Value):
    name: CriterionName
    description: Description


class CriteriaCatalogue(Value):
    """The criteria everyone scores. ``of`` keeps the rules; a stored catalogue is rebuilt
    as it was recorded, whatever today's limits."""

    criteria: tuple[Criterion, ...]

    @classmethod
    def of(cls, criteria: Sequence[Criterion]) -> CriteriaCatalogue:
        names = [c.name for c in criteria]
        if not names:
            raise InvalidCatalogue("a criteria catalogue needs at least one criterion")
        if len(names) > MAX_CRITERIA:
            raise TooManyCriteria(
                f"keep the criteria few: at most {MAX_CRITERIA}, not {len(names)}",
                limit=MAX_CRITERIA,
                given=len(names),
            )
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise InvalidCatalogue(f"each criterion is named once; repeated: {', '.join(repeated)}", repeated=repeated)
        return cls(criteria=tuple(criteria))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.criteria)

    def same_as(self, other: CriteriaCatalogue | None) -> bool:
        # Order is presentation only: a reordered catalogue as a new version would mark
        # every evaluation under the old one as not under the current catalogue.
        return other is not None and set(self.criteria) == set(other.criteria)


class CatalogueInForce(Value):
    """A catalogue, the organisation's version that defined it, and when it applies from."""

    catalogue: CriteriaCatalogue
    version: int
    effective_from: AwareDatetime


class SkippedCriterion(Value):
    """A criterion an evaluation did not score, and why (free text about the partnership)."""

    criterion: str
    reason: FreeText


def check_scores(catalogue: CriteriaCatalogue | None, factors: Mapping[str, float], skipped: Mapping[str, str]) -> None:
    """With a catalogue, each of its criteria is scored or skipped with a reason (not both),
    nothing outside it is named, and at least one is scored. Without one (none defined
    yet), factors are free as they always were, and there is nothing to skip."""
    if catalogue is None:
        if skipped:
            raise UnknownCriterion(
                "no criteria catalogue is defined yet, so there is nothing to skip",
                unknown=sorted(skipped),
                catalogue=[],
            )
        return
    names = catalogue.names
    unknown = sorted((set(factors) | set(skipped)) - set(names))
    if unknown:
        raise UnknownCriterion(
            f"not in the criteria catalogue: {', '.join(unknown)}", unknown=unknown, catalogue=list(names)
        )
    both = sorted(set(factors) & set(skipped))
    if both:
        raise ScoredAndSkipped(f"scored and also skipped: {', '.join(both)}", criteria=both)
    without_reason = sorted(name for name, reason in skipped.items() if not reason.strip())
    missing = [name for name in names if name not in factors and name not in skipped]
    if missing or without_reason:
        raise CriteriaNotScored(
            "every criterion of the catalogue is scored, or skipped with a reason",
            missing=missing,
            without_reason=without_reason,
            catalogue=list(names),
        )
    if not factors:
        raise CriteriaNotScored("an evaluation scores at least one criterion", missing=[], catalogue=list(names))
