"""The audit search's narrow meta rows (services/schema.sql, event_meta), written by the
event store's recorder in the events' own transaction.

The recorder knows each event's stored JSON already: reading the four meta fields here
costs a few microseconds an event, where the statement trigger that does it for writes
around the recorder re-parses every event as jsonb (~33 µs an event). The values are the
ones the trigger would store: text with NUL and lone surrogates replaced by U+FFFD (what
``stored_meta`` does for JSON that jsonb cannot hold), and times read as instants, UTC
when they carry no offset. A time of any other shape is left to the SQL ``meta_time``,
so nothing here needs to agree with PostgreSQL on odd input.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any, NamedTuple

from psycopg import sql

# The shape pydantic writes (AwareDatetime as JSON); only these are parsed here.
_PLAIN_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
# Set in the recorder's transaction: the trigger then leaves these events to it.
WRITTEN_BY_RECORDER = "verkosto.event_meta_by_recorder"


class MetaRow(NamedTuple):
    notification_id: int
    actor: str | None
    source: str | None
    occurred_at: datetime | None
    occurred_text: str | None  # for meta_time in SQL when not parsed here
    recorded_at: datetime | None
    recorded_text: str | None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else json.dumps(value, separators=(", ", ": "))
    return _UNSTORABLE.sub("\ufffd", text)


def _time(value: Any) -> tuple[datetime | None, str | None]:
    """(the instant, None) when parsed here; (None, the text) for SQL's meta_time."""
    if value is None:
        return None, None
    if not isinstance(value, str):
        return None, _text(value)
    if _PLAIN_TIME.fullmatch(value):
        parsed = datetime.fromisoformat(value)
        return (parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)), None
    return None, _text(value)


def meta_row(notification_id: int, state: bytes) -> MetaRow:
    try:
        document = json.loads(state)
        meta = document.get("meta") if isinstance(document, dict) else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict):
        return MetaRow(notification_id, None, None, None, None, None, None)
    occurred, occurred_text = _time(meta.get("occurred_at"))
    recorded, recorded_text = _time(meta.get("recorded_at"))
    return MetaRow(
        notification_id,
        _text(meta.get("actor")),
        _text(meta.get("source")),
        occurred,
        occurred_text,
        recorded,
        recorded_text,
    )


def row_from(notification_id: int, meta: Any) -> MetaRow:
    """The row of an event whose domain event's ``meta`` (domain.values.EventMeta) is at
    hand: the same values as parsed from its stored JSON (meta is never sealed), without
    parsing it."""
    return MetaRow(
        notification_id, _text(meta.actor), _text(meta.source), meta.occurred_at, None, meta.recorded_at, None
    )


def insert_meta(curs: Any, schema: str, rows: list[MetaRow]) -> None:
    """One statement for the batch; must follow ``claim`` in the same transaction."""
    if not rows:
        return
    columns = list(zip(*rows, strict=True))
    curs.execute(
        sql.SQL(
            "INSERT INTO {schema}.event_meta (notification_id, actor, source, occurred_at, recorded_at) "
            "SELECT n, a, s, coalesce(o, {schema}.meta_time(ot)), coalesce(r, {schema}.meta_time(rt)) "
            "FROM unnest(%b::bigint[], %b::text[], %b::text[], %b::timestamptz[], %b::text[], "
            "%b::timestamptz[], %b::text[]) AS m(n, a, s, o, ot, r, rt)"
        ).format(schema=sql.Identifier(schema)),
        [list(c) for c in columns],
    )


def claim(curs: Any) -> None:
    """Tells the statement trigger that this transaction writes its events' meta rows."""
    curs.execute("SELECT set_config(%s, 'on', true)", (WRITTEN_BY_RECORDER,))
