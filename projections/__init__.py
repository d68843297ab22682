"""Stream processors that turn the event bus into read models in PostgreSQL."""

from pathlib import Path

SQL_FILES = [Path(__file__).with_name("schema.sql")]
