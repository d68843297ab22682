"""The commands integrators send, over HTTP and on Kafka, derived from the aggregates.

Each command is the signature of the aggregate method marked ``@records(Event)``: its
parameters (but ``meta``, ``expected_version``, ``id`` and what the service looks up,
``domain.base.SUPPLIED``) become the command's fields, with the types and limits the
domain declared there, and ``type`` is the event's contract name. Integrators report what
happened, so a command is named after the event it records; inside, it is the method's
imperative (``log_contact``). Extend the domain; this module follows.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, Union, cast, get_args, get_type_hints
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    TypeAdapter,
    create_model,
    field_validator,
)

from contract.events import AGGREGATES
from domain.base import SUPPLIED, Aggregate, DomainEvent
from domain.organisation import ORGANISATION_ID
from domain.values import Name, check_storable

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# Not the command's own fields: where it is recorded, the aggregate's id, and what the
# service looks up for it.
_NOT_FIELDS = frozenset({"self", "cls", "meta", "expected_version", "id"}) | SUPPLIED


def _plausible(moment: datetime) -> datetime:
    # Year 1 or 9999 is a typo, and at the edges of the calendar time arithmetic overflows.
    if not EARLIEST <= moment <= LATEST:
        raise ValueError(f"must lie between {EARLIEST.year} and {LATEST.year}")
    return moment


When = Annotated[AwareDatetime, AfterValidator(_plausible)]


def _check_texts(value: Any) -> Any:
    """Every string a command carries, however deep (dict keys too), must be storable."""
    if isinstance(value, str):
        check_storable(value)
    elif isinstance(value, BaseModel):
        for item in value.__dict__.values():
            _check_texts(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_texts(key)
            _check_texts(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_texts(item)
    return value


class Command(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    occurred_at: When | None = Field(
        None, description="When it happened in the world (ISO 8601 with offset); default now."
    )
    command_id: Annotated[str, Field(min_length=1, max_length=200)] | None = Field(
        None, description="Idempotency key: the same id twice records once."
    )
    on_behalf_of: Name | None = None
    expected_version: Annotated[int, Strict()] | None = Field(
        None, ge=1, description="Reject with 409 unless the aggregate is at this version."
    )

    @field_validator("*", mode="after")
    @classmethod
    def _storable(cls, value: Any) -> Any:
        # PostgreSQL text and jsonb hold no NUL and no lone surrogate: refused here, with
        # the field named, rather than stored to stop every later step.
        return _check_texts(value)

    @classmethod
    def target(cls) -> str:
        """The field naming the aggregate the command is for."""
        raise NotImplementedError

    def target_id(self) -> UUID | None:
        return getattr(self, self.target())  # type: ignore[no-any-return]


class PartnershipCommand(Command):
    partnership_id: UUID | None = Field(None, description="Required on Kafka; over HTTP the path names it.")

    @classmethod
    def target(cls) -> str:
        return "partnership_id"


class NetworkCommand(Command):
    network_id: UUID | None = Field(None, description="Required on Kafka; over HTTP the path names it.")

    @classmethod
    def target(cls) -> str:
        return "network_id"


class OrganisationCommand(Command):
    """There is one organisation, under a well-known id: its commands name no target (on
    Kafka, any message key will do; its id keeps them in order on one partition)."""

    def target_id(self) -> UUID:
        return ORGANISATION_ID


def _base_for(aggregate: type[Aggregate]) -> type[Command]:
    bases: dict[str, type[Command]] = {
        "partnership": PartnershipCommand,
        "network": NetworkCommand,
        "organisation": OrganisationCommand,
    }
    return bases[aggregate.kind]


@dataclass(frozen=True)
class CommandSpec:
    """How one command reaches the domain: which method of which aggregate, with which
    of the command's fields as arguments."""

    model: type[Command]
    aggregate: type[Aggregate]
    method: str
    event: type[DomainEvent]
    fields: tuple[str, ...]
    supplied: tuple[str, ...] = ()  # what the service looks up and passes (SUPPLIED)

    @property
    def creates(self) -> bool:
        return issubclass(self.event, Aggregate.Created)

    def arguments(self, command: Command) -> dict[str, Any]:
        return {name: getattr(command, name) for name in self.fields}


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


def _spec(aggregate: type[Aggregate], attribute: str, method: Callable[..., Any]) -> CommandSpec:
    # By name: the aggregate's metaclass replaces the nested classes the body defined.
    event: type[DomainEvent] = getattr(aggregate, method.__records__.__name__)  # type: ignore[attr-defined]
    name = getattr(method, "__command__", None) or _camel(attribute)
    hints = get_type_hints(method, include_extras=True)
    parameters = inspect.signature(method).parameters
    fields: dict[str, Any] = {}
    for parameter in parameters.values():
        if parameter.name in _NOT_FIELDS:
            continue
        hint = hints[parameter.name]
        default = parameter.default
        if default is inspect.Parameter.empty:
            # An optional type is an optional field, even where the method (for its
            # argument order) lists it before ``meta``.
            default = None if type(None) in get_args(hint) else ...
        fields[parameter.name] = (hint, default)
    creates = issubclass(event, Aggregate.Created)
    # A creation has its own route, so its type may be left out; an event's never.
    fields["type"] = (Literal[event.type], event.type if creates else ...)
    derived = cast(type[Command], create_model(name, __base__=_base_for(aggregate), __module__=__name__, **fields))
    derived.__doc__ = (event.__doc__ or "").strip() or f"Records {event.type}."
    supplied = tuple(n for n in parameters if n in SUPPLIED)
    return CommandSpec(derived, aggregate, attribute, event, tuple(n for n in fields if n != "type"), supplied)


def _specs() -> tuple[CommandSpec, ...]:
    specs = []
    for aggregate in AGGREGATES:
        for attribute, value in vars(aggregate).items():
            method = value.__func__ if isinstance(value, classmethod) else value
            if callable(method) and hasattr(method, "__records__"):
                specs.append(_spec(aggregate, attribute, method))
    return tuple(specs)


SPECS: tuple[CommandSpec, ...] = _specs()
BY_MODEL: dict[type[Command], CommandSpec] = {s.model: s for s in SPECS}
_BY_NAME: dict[str, type[Command]] = {s.model.__name__: s.model for s in SPECS}


def model(name: str) -> type[Command]:
    return _BY_NAME[name]


def _union(specs: list[CommandSpec]) -> Any:
    return Annotated[Union[tuple(s.model for s in specs)], Field(discriminator="type")]  # noqa: UP007


def body_of(aggregate: type[Aggregate]) -> Any:
    """What ``POST /v1/<aggregates>/{id}/events`` accepts: any non-creating command."""
    return _union([s for s in SPECS if s.aggregate is aggregate and not s.creates])


def creation_of(aggregate: type[Aggregate]) -> type[Command]:
    (spec,) = [s for s in SPECS if s.aggregate is aggregate and s.creates]
    return spec.model


AnyCommand = _union(list(SPECS))
any_command: TypeAdapter[Command] = TypeAdapter(AnyCommand)


def __getattr__(name: str) -> Any:
    # contract.commands.LogContact and friends, for code and tests that name one.
    if name in _BY_NAME:
        return _BY_NAME[name]
    raise AttributeError(name)
