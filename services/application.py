"""Verkosto's application service: commands in, ids and positions out.

Commands are decided in memory against aggregates loaded in bulk (from this process's
cache or the latest snapshot plus the events after them: services/loading.py), then
committed in one event-store transaction together with their command ids (and, for Kafka,
the consumer positions). A conflicting concurrent write aborts the whole transaction; the
batch is then decided again against fresh state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID

from eventsourcing.persistence import IntegrityError
from pydantic import ValidationError

from contract import commands as c
from domain.base import SUPPLIED_AGGREGATES, Aggregate
from domain.corrections import parse_event_id
from domain.errors import DomainError
from domain.organisation import ORGANISATION_ID, Organisation, supplied_by
from domain.values import EventMeta
from services.aggregate_cache import DEFAULT_CAPACITY, AggregateCache
from services.eventstore import CommandRecord, ConsumerPosition, EventStoreApplication
from services.loading import IncrementalLoading
from services.privacy import KeyStore, unseal_event
from services.reading import NotFound as NotFound
from services.reading import Reading

Source = Literal["api", "kafka"]


@dataclass(frozen=True)
class Request:
    """A command with who sent it and through which door."""

    command: c.Command
    actor: str
    source: Source


@dataclass(frozen=True)
class Accepted:
    aggregate_id: UUID
    version: int
    position: int
    duplicate: bool = False


@dataclass(frozen=True)
class Rejected:
    """A refused command; ``code`` is stable (domain.errors, or not_found, already_exists,
    concurrent_write, invalid_command here). Each door decides what it means to its
    callers: the API maps codes to statuses in services/api/problems.py."""

    code: str
    message: str
    details: dict[str, Any] = field(default_factory=dict)


Outcome = Accepted | Rejected


@dataclass(frozen=True)
class _Pending:
    aggregate_id: UUID
    version: int


@dataclass(frozen=True)
class _SameAs:
    index: int  # a repeated command id within one batch answers as its first use


@dataclass
class Decision:
    requests: Sequence[Request]
    outcomes: list[Outcome | _Pending | _SameAs]
    aggregates: dict[UUID, Aggregate]
    commands: list[CommandRecord]
    # What the load saw: the erasure generation, and each loaded aggregate's latest
    # snapshot version (for caching the aggregates once committed).
    generation: int = 0
    snapshot_versions: dict[UUID, int] = field(default_factory=dict)

    @property
    def rejected(self) -> list[tuple[int, Rejected]]:
        return [(i, o) for i, o in enumerate(self.outcomes) if isinstance(o, Rejected)]


class ConcurrentWrite(Exception):
    """Another writer got there first; decide again on fresh state."""


def utc_now() -> datetime:
    return datetime.now(UTC)


class Verkosto(Reading, IncrementalLoading, EventStoreApplication):
    def __init__(
        self,
        env: dict[str, str],
        clock: Callable[[], datetime] = utc_now,
        keys: KeyStore | None = None,
        cache_capacity: int = DEFAULT_CAPACITY,
    ) -> None:
        self.keys = keys  # before super().__init__, which builds the mapper that uses it
        super().__init__(env)
        self.clock = clock
        self.cache = AggregateCache(cache_capacity)

    def construct_mapper(self) -> Any:
        mapper = super().construct_mapper()
        mapper.keys = self.keys  # type: ignore[attr-defined]
        return mapper

    def reveal(self, topic: str, state: dict[str, Any]) -> dict[str, Any]:
        """Stored JSON with personal fields unsealed (or shown as erased)."""
        return unseal_event(topic, state, self.keys) if self.keys is not None else state

    def close(self) -> None:
        super().close()
        if self.keys is not None:
            self.keys.close()

    # Writing ---------------------------------------------------------------------------

    def execute(
        self, requests: Sequence[Request], positions: Sequence[ConsumerPosition] = (), attempts: int = 5
    ) -> list[Outcome]:
        for _ in range(attempts):
            try:
                return self.commit(self.decide(requests), positions)
            except ConcurrentWrite:
                continue
        busy = Rejected("concurrent_write", "others kept changing these aggregates; try again")
        return [busy for _ in requests]

    def decide(self, requests: Sequence[Request]) -> Decision:
        recorded_at = self.clock()
        seen = self.find_commands([r.command.command_id for r in requests if r.command.command_id])
        targets = {i for r in requests if (i := _target_id(r.command)) is not None}
        if any("catalogue" in c.BY_MODEL[type(r.command)].supplied for r in requests):
            targets.add(ORGANISATION_ID)  # the catalogue is the organisation's
        # Other aggregates a command decides on (a merge's survivor): loaded with the batch.
        targets |= {
            other
            for r in requests
            for name in c.BY_MODEL[type(r.command)].supplied
            if name in SUPPLIED_AGGREGATES
            and isinstance(other := getattr(r.command, SUPPLIED_AGGREGATES[name], None), UUID)
        }
        generation, loaded = self._load(targets)
        aggregates = {i: e.aggregate for i, e in loaded.items()}
        decision = Decision(requests, [], {}, [], generation, {i: e.snapshot_version for i, e in loaded.items()})
        first_use: dict[str, int] = {}
        for index, request in enumerate(requests):
            command = request.command
            if command.command_id in seen:
                decision.outcomes.append(seen[command.command_id])
                continue
            if command.command_id in first_use:
                decision.outcomes.append(_SameAs(first_use[command.command_id]))
                continue
            try:
                meta = EventMeta(
                    occurred_at=command.occurred_at or recorded_at,
                    recorded_at=recorded_at,
                    actor=request.actor,
                    on_behalf_of=command.on_behalf_of,
                    source=request.source,
                    command_id=command.command_id,
                )
                touched = _apply(command, meta, aggregates, self._recorded_event)
            except DomainError as error:
                decision.outcomes.append(Rejected(error.code, error.message, error.details))
                continue
            except ValidationError as error:
                # Valid by the contract but not as an event (an over-long actor name, say):
                # refuse this one command rather than fail the batch it came in.
                problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
                decision.outcomes.append(Rejected("invalid_command", problems))
                continue
            for aggregate in touched:
                aggregates[aggregate.id] = aggregate
                decision.aggregates[aggregate.id] = aggregate
            aggregate = touched[0]
            decision.outcomes.append(_Pending(aggregate.id, aggregate.version))
            if command.command_id:
                first_use[command.command_id] = index
                decision.commands.append(CommandRecord(command.command_id, aggregate.id, aggregate.version))
        return decision

    def commit(
        self,
        decision: Decision,
        positions: Sequence[ConsumerPosition] = (),
        extra_rejections: Sequence[tuple[str, str]] = (),
    ) -> list[Outcome]:
        # With no events, eventsourcing still runs our recorder hook in a transaction, so
        # a consumer moves past messages it refused.
        try:
            with self.mapper.watch_erased() as erased:  # type: ignore[attr-defined]
                recordings = self.save(
                    *decision.aggregates.values(),
                    commands=decision.commands,
                    positions=positions,
                    tallies=tally(decision, extra_rejections),
                    # For the audit search's meta rows, so the recorder need not parse them.
                    event_meta={
                        (e.originator_id, e.originator_version): e.meta  # type: ignore[attr-defined]
                        for a in decision.aggregates.values()
                        for e in a.pending_events
                    },
                )
        except IntegrityError as error:
            raise ConcurrentWrite(str(error)) from error
        # Committed aggregates are cached as they stand, so the next command on them reads
        # back no events: they hold what was stored, unless a subject's key was gone and
        # the store holds less (a subject erased before the command stays erased). Those
        # are left out; their next load applies the stored events to the cached version
        # before them. An erasure meanwhile moves the generation, which empties the cache.
        self._remember_committed(
            [a for i, a in decision.aggregates.items() if i not in erased],
            decision.snapshot_versions,
            decision.generation,
        )
        position_of = {
            (r.domain_event.originator_id, r.domain_event.originator_version): r.notification.id for r in recordings
        }
        outcomes: list[Outcome] = []
        for outcome in decision.outcomes:
            if isinstance(outcome, _Pending):
                key = (outcome.aggregate_id, outcome.version)
                outcome = Accepted(outcome.aggregate_id, outcome.version, position_of[key])
            elif isinstance(outcome, _SameAs):
                first = outcomes[outcome.index]
                assert isinstance(first, Accepted)
                outcome = Accepted(first.aggregate_id, first.version, first.position, duplicate=True)
            outcomes.append(outcome)
        return outcomes

    def _recorded_event(self, aggregate: Aggregate, version: int) -> Any:
        """Event ``version`` of ``aggregate`` (personal fields revealed), None if it has
        none: from this batch's pending events, else the store (one row)."""
        for event in aggregate.pending_events:
            if event.originator_version == version:
                return event
        if not 1 <= version <= aggregate.version:
            return None
        return next(iter(self.events.get(aggregate.id, gt=version - 1, lte=version)), None)

    # Reading ---------------------------------------------------------------------------

    # Reads go through the recorder (the port to persistence: PostgreSQL in production,
    # eventsourcing's in-memory recorder in the unit tests). This one decides commands;
    # the aggregates' and their histories' reads are services/reading.py's.

    def find_commands(self, command_ids: Iterable[str]) -> dict[str, Accepted]:
        ids = list(set(command_ids))
        if not ids:
            return {}
        rows = self.recorder.commands(ids)  # type: ignore[attr-defined]
        return {r["command_id"]: Accepted(r["aggregate_id"], r["version"], r["notification_id"], True) for r in rows}


def tally(decision: Decision, extra_rejections: Sequence[tuple[str, str]]) -> dict[tuple[str, str, str], int]:
    """(source, outcome, reason) -> count, for the metrics; extra rejections are
    (source, reason) pairs refused before a command could be decided (malformed input)."""
    counts: dict[tuple[str, str, str], int] = {}
    for request, outcome in zip(decision.requests, decision.outcomes, strict=True):
        if isinstance(outcome, Rejected):
            key = (request.source, "rejected", outcome.code)
        elif isinstance(outcome, _Pending):
            key = (request.source, "accepted", "")
        else:
            key = (request.source, "duplicate", "")
        counts[key] = counts.get(key, 0) + 1
    for source, reason in extra_rejections:
        counts[(source, "rejected", reason)] = counts.get((source, "rejected", reason), 0) + 1
    return counts


class _Unknown(DomainError):
    code = "not_found"


class _Exists(DomainError):
    code = "already_exists"


def _target_id(command: c.Command) -> UUID | None:
    return command.target_id()


def _apply(
    command: c.Command,
    meta: EventMeta,
    aggregates: dict[UUID, Aggregate],
    recorded_event: Callable[[Aggregate, int], Any],
) -> list[Aggregate]:
    """Calls the aggregate method the command was derived from (see contract.commands);
    returns the aggregates it recorded events on, the command's own first."""
    spec = c.BY_MODEL[type(command)]
    target = command.target_id()
    kind = spec.aggregate.kind
    if spec.creates:
        if target is not None and (target in aggregates or target == ORGANISATION_ID):  # that id is taken
            raise _Exists(f"{target} already exists", id=str(target))
        create = getattr(spec.aggregate, spec.method)
        return [create(**spec.arguments(command), meta=meta, id=target)]
    if target is None:
        raise _Unknown(f"{kind}_id is required", field=f"{kind}_id")
    aggregate = aggregates.get(target)
    if aggregate is None and target == ORGANISATION_ID:  # founded on its first command: nobody sends that
        aggregate = Organisation.found(meta)
    if not isinstance(aggregate, spec.aggregate):
        raise _Unknown(f"no {kind} {target}", id=str(target))
    arguments = spec.arguments(command)
    # Looked up only for the commands that take them, as the batch has them so far.
    if "catalogue" in spec.supplied:
        arguments["catalogue"] = supplied_by(aggregates.get(ORGANISATION_ID))["catalogue"]
    if "target" in spec.supplied:
        arguments["target"] = _named_event(aggregate, arguments["event_id"], recorded_event)
    others = [name for name in spec.supplied if name in SUPPLIED_AGGREGATES]
    for name in others:  # the domain checks what kind it is
        arguments[name] = aggregates.get(getattr(command, SUPPLIED_AGGREGATES[name]))
    getattr(aggregate, spec.method)(**arguments, meta=meta, expected_version=command.expected_version)
    # Only those it recorded on are saved with it.
    return [aggregate, *(arguments[n] for n in others if arguments[n] is not None and arguments[n].pending_events)]


def _named_event(aggregate: Aggregate, event_id: str, recorded_event: Callable[[Aggregate, int], Any]) -> Any:
    """The event an ``<aggregate id>:<version>`` id names, if it is this aggregate's."""
    aggregate_id, version = parse_event_id(event_id)
    return recorded_event(aggregate, version) if aggregate_id == aggregate.id else None
