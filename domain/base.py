"""Pydantic-backed aggregate and event bases on ``eventsourcing.domain``.

Events are frozen pydantic models, so the stored JSON is validated on the way back in
and a stored event can never silently gain or lose a field.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar, TypeVar
from uuid import UUID, uuid4

from eventsourcing.domain import BaseAggregate, CanInitAggregate, CanMutateAggregate
from pydantic import BaseModel, ConfigDict

from domain.errors import AggregateEnded, OccurredBeforeStart, OccurredInFuture, VersionConflict
from domain.values import EventMeta

# Reporting systems' clocks drift; beyond this, "occurred after we recorded it" is an error.
CLOCK_SKEW_ALLOWANCE = timedelta(minutes=5)


def check_not_in_future(meta: EventMeta) -> None:
    if meta.occurred_at > meta.recorded_at + CLOCK_SKEW_ALLOWANCE:
        raise OccurredInFuture(
            f"occurred_at {meta.occurred_at.isoformat()} is after it was recorded "
            f"({meta.recorded_at.isoformat()}); report things once they have happened",
        )


class DomainEvent(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # The event's name in the contract (what the bus, history and projections call it).
    type: ClassVar[str]
    # The personal fields (top-level names) whose values ``apply`` keeps in the aggregate.
    # Loading an aggregate to decide a command unseals only these; None: all of them (the
    # safe default). An event whose personal fields only describe what happened (a
    # contact's participants and summary) keeps none.
    keeps_personal: ClassVar[frozenset[str] | None] = None

    originator_id: UUID
    originator_version: int
    # eventsourcing's own timestamp; Aggregate sets it to meta.recorded_at, so the domain
    # never lets the library read the wall clock.
    timestamp: datetime
    meta: EventMeta


Command = TypeVar("Command", bound=Callable[..., Any])

# Command parameters the service looks up for a command, never what a sender says: the
# contract leaves them out of the command, and the application passes them (an
# evaluation is scored against the organisation's criteria catalogue in force; a
# retraction or correction gets the event it names; a merge, the partnership it keeps; a
# network's new member, the partnership; a plan decision, the network it names). Supplied
# aggregates are loaded with the batch, and a command may record events on them too (the
# other half of a merge).
SUPPLIED_AGGREGATES = {
    "survivor": "survivor_id",
    "member": "partnership_id",
    "network": "network_id",
}  # parameter: the field naming it
SUPPLIED = frozenset({"catalogue", "target"}) | SUPPLIED_AGGREGATES.keys()


def records(event_class: type[DomainEvent], command: str | None = None) -> Callable[[Command], Command]:
    """Marks an aggregate method as the command that records ``event_class``. Its
    parameters (all but ``meta``, ``expected_version``, ``id`` and the ``SUPPLIED``) are
    the command's fields, typed with what the contract accepts; the contract derives its
    command from them, named ``command`` or after the method (``log_contact``:
    ``LogContact``)."""

    def mark(method: Command) -> Command:
        method.__records__ = event_class  # type: ignore[attr-defined]
        method.__command__ = command  # type: ignore[attr-defined]
        return method

    return mark


class Aggregate(BaseAggregate[UUID]):
    kind: ClassVar[str]  # the aggregate's name in the contract

    @staticmethod
    def create_id(*_: Any, **__: Any) -> UUID:
        return uuid4()

    class Event(DomainEvent, CanMutateAggregate[UUID]):
        pass

    class Created(Event, CanInitAggregate[UUID]):
        originator_topic: str

    # Set by each aggregate's creation event.
    started_at: datetime

    def trigger_event(self, event_class: Any, **kwargs: Any) -> None:
        # Left alone, eventsourcing stamps each event with the wall clock; time here comes
        # only from the command's meta.
        meta = kwargs.get("meta")
        if isinstance(meta, EventMeta):
            kwargs.setdefault("timestamp", meta.recorded_at)
        super().trigger_event(event_class, **kwargs)

    @classmethod
    def _create(cls, event_class: Any, *, id: Any = None, **kwargs: Any) -> Any:  # noqa: A002
        meta = kwargs.get("meta")
        if isinstance(meta, EventMeta):
            kwargs.setdefault("timestamp", meta.recorded_at)
        return super()._create(event_class, id=id, **kwargs)

    ended: bool = False

    def check_version(self, expected: int | None) -> None:
        if expected is not None and expected != self.version:
            raise VersionConflict(
                f"expected version {expected}, but it is at version {self.version}",
                expected_version=expected,
                actual_version=self.version,
            )

    def check_not_ended(self) -> None:
        if self.ended:
            raise AggregateEnded(
                f"{type(self).__name__.lower()} {self.id} has ended; nothing more can be recorded",
            )

    def check_not_before_start(self, meta: EventMeta) -> None:
        if meta.occurred_at < self.started_at:
            raise OccurredBeforeStart(
                f"occurred_at {meta.occurred_at.isoformat()} is before the "
                f"{type(self).__name__.lower()} began ({self.started_at.isoformat()})",
            )

    def check_can_record(self, meta: EventMeta, expected_version: int | None) -> None:
        self.check_version(expected_version)
        check_not_in_future(meta)
        self.check_not_ended()
        self.check_not_before_start(meta)
