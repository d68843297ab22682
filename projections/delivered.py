"""An event as a projection receives it: off the bus, or out of the event store in a
rebuild (projections/tracking.py applies them)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from uuid import UUID

from contract.events import Published
from projections.registry import Projection


@dataclass(frozen=True)
class Delivered:
    """One event as it came off the bus (or out of the event store, in a rebuild)."""

    partition: int
    offset: int
    event: dict[str, Any]

    @cached_property
    def aggregate_id(self) -> UUID:  # parsed once, though every projection asks
        return UUID(self.event["aggregate_id"])

    @property
    def version(self) -> int:
        return int(self.event["version"])

    @property
    def position(self) -> int:
        return int(self.event["position"])

    @cached_property
    def published(self) -> Published:
        """The event typed, decoded once for every projection. A stored event that no
        longer decodes raises here, inside the projection's turn, and is parked."""
        return Published.of(self.event)


def typed_for(projection: Projection, events: Sequence[Delivered]) -> list[Published]:
    """The events this projection folds, decoded; the rest (other types, and types this
    release does not know yet) are only remembered as applied."""
    return [d.published for d in events if d.event.get("type") in projection.handles]
