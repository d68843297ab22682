"""Every projection the projector runs, in one list, and their installation."""

from __future__ import annotations

from typing import Any

from projections.directory import directory_projection
from projections.graph import graph_projection
from projections.lifecycle import lifecycle_projection
from projections.networks import networks_projection
from projections.ownership import OwnershipProjection
from projections.portfolio import portfolio_projection
from projections.registry import Projection, ensure_active
from projections.trust import TrustProjection


def all_projections() -> list[Projection]:
    return [
        OwnershipProjection(),
        TrustProjection(),
        lifecycle_projection(),
        portfolio_projection(),
        networks_projection(),
        directory_projection(),
        graph_projection(),
    ]


def by_name(name: str) -> Projection:
    for projection in all_projections():
        if projection.name == name:
            return projection
    known = ", ".join(p.name for p in all_projections())
    raise LookupError(f"no projection {name!r}; known: {known}")


def install(conn: Any, schema: str) -> None:
    ensure_active(conn, schema, all_projections())
