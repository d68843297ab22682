"""Where an event's personal data sits, read off the ``Personal`` marks on its fields.

Sealing (``services/privacy.py``) walks these paths in the stored JSON; nothing names a
field by string, so a new event is sealed as it is declared, and a renamed one still is.
"""

from __future__ import annotations

import types
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import BaseModel

from domain.base import DomainEvent
from domain.values import Personal

EVERY = "*"  # a path step meaning "each item of this list"


@dataclass(frozen=True)
class PersonalField:
    path: tuple[str, ...]  # keys from the event's stored JSON; EVERY steps into lists
    mark: Personal


def _marks(annotation: Any, path: tuple[str, ...]) -> list[PersonalField]:
    origin = get_origin(annotation)
    if origin is Annotated:
        inner, *extras = get_args(annotation)
        own = [PersonalField(path, extra) for extra in extras if isinstance(extra, Personal)]
        return own or _marks(inner, path)
    if origin in (Union, types.UnionType):
        found: list[PersonalField] = []
        for arg in get_args(annotation):
            found += [f for f in _marks(arg, path) if f not in found]
        return found
    if origin in (tuple, list, set, frozenset):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        return [f for arg in args for f in _marks(arg, (*path, EVERY))]
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _model_marks(annotation, path)
    return []


def _model_marks(model: type[BaseModel], path: tuple[str, ...]) -> list[PersonalField]:
    found: list[PersonalField] = []
    for name, info in model.model_fields.items():
        own = [PersonalField((*path, name), m) for m in info.metadata if isinstance(m, Personal)]
        found += own or _marks(info.annotation, (*path, name))
    return found


@cache
def personal_fields(event: type[DomainEvent]) -> tuple[PersonalField, ...]:
    """Every personal field of the event class, meta included."""
    return tuple(_model_marks(event, ()))
