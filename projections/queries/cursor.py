"""Opaque paging cursors: the sort key of the last row a page returned.

A cursor names a position in a stable order (a keyset), not an offset, so rows written
between two pages neither repeat nor vanish from the pages still to come.
"""

from __future__ import annotations

import base64
import json
from typing import Any


def encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key, separators=(",", ":")).encode()).decode().rstrip("=")


def decode(cursor: str, types: tuple[type, ...]) -> list[Any]:
    """The key inside ``cursor``; ValueError unless it holds values of exactly ``types``."""
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError("not a cursor this API issued") from error
    if (
        not isinstance(key, list)
        or len(key) != len(types)
        or not all(isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, types, strict=True))
    ):
        raise ValueError("not a cursor this API issued")
    return key
