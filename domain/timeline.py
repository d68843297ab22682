"""Small helpers for things that hold from a moment in valid time onwards.

Pure functions, shared by the domain and the projections, so "which one was in force
then" and "is this moment comparable" are answered the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

T = TypeVar("T")


def _itself(item: Any) -> Any:
    return item


def in_force_at(items: Iterable[T], moment: Any, key: Callable[[T], Any] = _itself) -> T | None:
    """The last of ``items`` that took effect at or before ``moment``, or None.

    ``items`` are in the order of ``key(item)`` (when each took effect); ``moment`` must
    compare with those keys (datetimes, or ISO strings of one offset). An item taking
    effect exactly at ``moment`` is in force then.
    """
    current = None
    for item in items:
        if key(item) > moment:
            break
        current = item
    return current


def check_aware(moment: datetime, label: str) -> None:
    """Refuses anything but a timezone-aware datetime: naive and aware datetimes cannot be
    compared, so the mistake is caught where it is made. ``label`` names it in the error."""
    if not isinstance(moment, datetime) or moment.utcoffset() is None:
        raise ValueError(f"{label} must be a timezone-aware datetime, not {moment!r}")
