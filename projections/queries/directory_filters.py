"""The directory's filters (projections/queries/directory.py pages through them): each
one asked for is a condition on ``d``, the listing's row, with its value as a parameter.
Ended rows are left out unless asked for."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PartnershipFilters:
    steward_key: str | None = None  # domain.people.person_key of the steward ("me" resolved by the caller)
    unit: str | None = None
    stage: str | None = None
    segment_now: str | None = None
    segment_future: str | None = None
    role: str | None = None
    include_ended: bool = False  # ended: its stage is ended, or it was merged into another

    def where(self) -> tuple[list[str], dict[str, Any]]:
        asked = {
            "steward_key": "d.steward_key = %(steward_key)s",
            "unit": "d.owner_unit = %(unit)s",
            "stage": "d.stage = %(stage)s",
            "segment_now": "d.segment_now = %(segment_now)s",
            "segment_future": "d.segment_future = %(segment_future)s",
            "role": "d.roles @> ARRAY[%(role)s::text]",  # the GIN index on roles
        }
        return _where(self.__dict__, asked, self.include_ended)


@dataclass(frozen=True)
class NetworkFilters:
    role: str | None = None
    activity: str | None = None
    purpose: str | None = None
    include_ended: bool = False  # ended: we left it

    def where(self) -> tuple[list[str], dict[str, Any]]:
        asked = {
            "role": "d.role = %(role)s",
            "activity": "d.activity = %(activity)s",
            "purpose": "d.purposes @> ARRAY[%(purpose)s::text]",
        }
        return _where(self.__dict__, asked, self.include_ended)


def _where(values: dict[str, Any], asked: dict[str, str], include_ended: bool) -> tuple[list[str], dict[str, Any]]:
    conditions = [condition for name, condition in asked.items() if values[name] is not None]
    return conditions + ([] if include_ended else ["NOT d.ended"]), {n: values[n] for n in asked}
