"""People: who the caller is, which stewards the system knows, and what `me` means.

A steward is a person however their name is typed (domain/people.py): steward filters
match by person key, so "Alice" and "alice" are one steward. `me` names the person the
caller's token belongs to (`verkosto token issue --person <name>`); ``resolve_steward`` is
the one place that says so, for every router with a steward filter.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any, overload

from fastapi import APIRouter, Depends, Query

from contract.commands import When
from domain.people import person_key
from projections.queries.attention import stewards_at
from projections.queries.reading import position
from projections.registry import active_schema
from services.api.deps import ServicesDep, require
from services.api.freshness import await_position
from services.api.problems import Problem
from services.auth import Principal, token_people

router = APIRouter(prefix="/v1/people", tags=["people"])
Dashboard = Annotated[Principal, Depends(require("dashboards:read"))]
ME = "me"


@overload
def resolve_steward(principal: Principal, value: str) -> str: ...
@overload
def resolve_steward(principal: Principal, value: str | None) -> str | None: ...
def resolve_steward(principal: Principal, value: str | None) -> str | None:
    """The person key a steward filter names: ``me`` (any case) is the caller's person;
    anything else is a name, keyed. None when there is no filter."""
    if value is None:
        return None
    key = person_key(value)
    if key != ME:
        return key
    if principal.person_key is None:
        raise Problem(
            400,
            "no_person",
            "This token belongs to no person",
            "steward=me means the person the token belongs to, and this one was issued without one: "
            "use a token issued with `verkosto token issue --person <name>`, or name the steward.",
            field="steward",
        )
    return principal.person_key


@router.get("/me")
def get_me(principal: Dashboard) -> dict[str, Any]:
    """Who the caller is: the token's name, the person it belongs to (null if none) and its scopes."""
    return {
        "token": principal.name,
        "person": principal.person,
        "person_key": principal.person_key,
        "scopes": sorted(principal.scopes),
    }


def _most_used(names: Counter[str]) -> str:
    # The commonest spelling; of equally common ones, the first in code point order.
    return min(names.items(), key=lambda item: (-item[1], item[0]))[0]


@router.get("")
def get_people(
    _: Dashboard,
    services: ServicesDep,
    as_of: Annotated[When | None, Query(description="Stewards as of this moment (default now)")] = None,
    min_position: Annotated[int | None, Query(ge=0, description="Wait briefly until this event is applied")] = None,
    wait_ms: Annotated[int, Query(ge=0, le=10_000)] = 3_000,
) -> dict[str, Any]:
    """The people the system knows, by person key: the stewards of open partnerships (with
    the spelling most used for each, every spelling seen, and how many they steward) and
    the people active tokens belong to."""
    moment = as_of or datetime.now(UTC)
    caught_up = await_position(services, "lifecycle", min_position, wait_ms)
    with services.pool.connection() as conn:
        rm = active_schema(conn, services.settings.db_schema, "lifecycle")
        stewards = stewards_at(conn, rm, moment)
        holders = token_people(conn, services.settings.db_schema)
        at = position(conn, rm)
    spelled: dict[str, Counter[str]] = {}
    stewarded: Counter[str] = Counter()
    for name, count in stewards:
        key = person_key(name)
        spelled.setdefault(key, Counter())[name] += count
        stewarded[key] += count
    tokens: Counter[str] = Counter(key for _, key in holders)
    for person, key in holders:
        if key not in stewarded:  # the names stewards are recorded under come first
            spelled.setdefault(key, Counter())[person] += 1
    people = [
        {
            "person_key": key,
            "name": _most_used(names),
            "names": sorted(names),
            "partnerships": stewarded[key],
            "tokens": tokens[key],
        }
        for key, names in sorted(spelled.items())
    ]
    return {
        "projection": "lifecycle",
        "position": at,
        "caught_up": caught_up,
        "as_of": moment,
        "count": len(people),
        "people": people,
    }
