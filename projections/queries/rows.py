"""Reading rows as tuples, whatever row factory the connection came with (the API's pool
hands out dict rows)."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row


def tuples(conn: psycopg.Connection[Any], query: sql.Composed, args: Any) -> list[tuple[Any, ...]]:
    with conn.cursor(row_factory=tuple_row) as cur:
        return cur.execute(query, args).fetchall()
