"""The demo organisation goes through the real command path, and every command is valid."""

from __future__ import annotations

import threading
from collections import Counter

import psycopg

from services.application import Verkosto
from services.demo import load
from services.ingest import CommandIngest
from services.settings import Settings


def test_the_demo_is_a_realistic_organisation_that_breaks_no_rule(app: Verkosto, settings: Settings) -> None:
    ingest = CommandIngest(app, settings)
    stop = threading.Event()
    thread = threading.Thread(target=ingest.run, args=(stop,))
    thread.start()
    try:
        accepted, refused = load(settings, partners=110, seed=3, wait_s=180)
    finally:
        stop.set()
        thread.join(30)
        ingest.close()
    assert refused == 0 and accepted > 2000
    with psycopg.connect(settings.require_database_url()) as conn:
        topics = Counter(t for (t,) in conn.execute(f'SELECT topic FROM "{settings.db_schema}".verkosto_events'))
        reasons = conn.execute(
            f"""SELECT convert_from(state, 'UTF8')::jsonb ->> 'reason' FROM "{settings.db_schema}".verkosto_events
                WHERE topic LIKE '%OwnershipTransferred'"""
        ).fetchall()
    assert topics["domain.partnership:Partnership.Opened"] == 110
    assert topics["domain.network:Network.Left"] >= 1  # networks ending
    assert {r for (r,) in reasons} == {"steward_left"} and len(reasons) >= 3  # stewards departing
    assert topics["domain.partnership:Partnership.StageChanged"] > 100
