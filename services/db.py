"""PostgreSQL plumbing: migrations and connections for what eventsourcing does not own."""

from __future__ import annotations

from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.rows import dict_row

from services.application import Verkosto
from services.eventstore import CONNECT_TIMEOUT_S, eventsourcing_env

SERVICES_SQL = Path(__file__).with_name("schema.sql")
# Concurrent first starts would race on CREATE TYPE/TABLE; one advisory lock orders them.
_MIGRATION_LOCK = 0x5645524B  # "VERK"


def connect(database_url: str, **kwargs: object) -> psycopg.Connection:
    # A database that is gone fails the attempt within seconds, never after a TCP timeout.
    if "connect_timeout" not in conninfo_to_dict(database_url):
        kwargs.setdefault("connect_timeout", CONNECT_TIMEOUT_S)
    return psycopg.connect(database_url, row_factory=dict_row, **kwargs)  # type: ignore[arg-type]


def migrate(database_url: str, schema: str) -> None:
    """Creates the schema, the event store's tables, ours and the read models' active
    versions; safe to run any time."""
    from projections import SQL_FILES
    from projections.catalog import install
    from services.audit.chain import backfill

    with connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_MIGRATION_LOCK,))
        try:
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
            app = Verkosto(eventsourcing_env(database_url, schema, create_table=True))
            app.close()
            for path in [SERVICES_SQL, *SQL_FILES]:
                text = path.read_text().replace("{schema}", sql.Identifier(schema).as_string(conn))
                conn.execute(text)  # type: ignore[arg-type]
            install(conn, schema)
            backfill(conn, schema)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_MIGRATION_LOCK,))


def open_application(database_url: str, schema: str) -> Verkosto:
    from services.privacy import KeyStore

    return Verkosto(eventsourcing_env(database_url, schema, create_table=False), keys=KeyStore(database_url, schema))


def drop_everything(database_url: str, schema: str) -> None:
    """Drops the schema and every read-model version schema beside it (tests, benchmarks)."""
    with connect(database_url, autocommit=True) as conn:
        names = [
            r["nspname"]
            for r in conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname = %s OR starts_with(nspname, %s)",
                (schema, f"{schema}__"),
            ).fetchall()
        ]
        for name in names:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))
