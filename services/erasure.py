"""Erasing a person: destroy their key, then rebuild every read model from the event
store so no projection keeps what it once revealed (older versions are dropped too)."""

from __future__ import annotations

from collections.abc import Callable

from projections.catalog import all_projections
from projections.rebuild import rebuild_many_sync
from services.privacy import CACHE_S, erase
from services.replay import StoreHistory

Progress = Callable[[str, int, int], None]


def erase_subject(database_url: str, schema: str, subject: str, progress: Progress | None = None) -> list[str]:
    if not subject.startswith(("person:", "partnership:", "network:")) or subject.endswith(":"):
        raise ValueError("a subject is person:<name>, partnership:<id> or network:<id>")
    scrubbed = erase(database_url, schema, subject)
    # Let running processes' key caches expire before replaying, so the relay and the
    # projector reveal nothing more of this subject either.
    import time

    time.sleep(CACHE_S)
    with StoreHistory(database_url, schema) as history:
        # One pass over the store for every read model (the old versions, which hold the
        # plaintext, are dropped rather than kept).
        rebuild_many_sync(
            database_url,
            schema,
            all_projections(),
            lambda reached, last: progress("read models", reached, last) if progress else None,
            keep_previous=False,
            source=history,
        )
    return scrubbed
