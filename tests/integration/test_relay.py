"""The relay from the notification log to the events topic."""

from __future__ import annotations

import json
import uuid

from psycopg import sql

from contract import commands as c
from services.application import Request, Verkosto
from services.db import connect
from services.relay import Relay
from services.settings import Settings
from tests.kafka_helpers import consume

PARTNER = {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]}


def record_story(app: Verkosto, contacts: int) -> uuid.UUID:
    pid = uuid.uuid4()
    app.execute(
        [Request(c.OpenPartnership(partnership_id=pid, partner=PARTNER, owner_unit="u", steward="s"), "t", "api")]
    )  # type: ignore[arg-type]
    app.execute(
        [
            Request(
                c.LogContact(
                    type="contact_logged", partnership_id=pid, channel="call", direction="inbound", participants=("s",)
                ),
                "t",
                "api",
            )
            for _ in range(contacts)
        ]
    )
    return pid


def test_every_event_is_published_in_order_keyed_by_aggregate(app: Verkosto, settings: Settings) -> None:
    first, second = record_story(app, 3), record_story(app, 2)
    relay = Relay(app, settings)
    try:
        relay.resume()
        assert relay.publish_batch() == 7
        assert relay.publish_batch() == 0
    finally:
        relay.close()
    records = consume(settings, settings.events_topic, 7)
    events = [json.loads(r.value) for r in records]
    assert sorted(e["position"] for e in events) == list(range(1, 8))
    for pid, count in ((first, 4), (second, 3)):
        mine = [(r.key, json.loads(r.value)) for r in records if r.key == str(pid).encode()]
        assert [e["version"] for _, e in mine] == list(range(1, count + 1))  # one partition, in order
        assert mine[0][1]["type"] == "partnership_opened"
        assert mine[0][1]["data"]["partner"]["name"] == "Acme Oy"


def publish_once(app: Verkosto, settings: Settings) -> None:
    relay = Relay(app, settings)
    try:
        relay.resume()
        relay.publish_batch()
    finally:
        relay.close()


def test_a_restarted_relay_continues_where_it_stopped(app: Verkosto, settings: Settings) -> None:
    record_story(app, 2)
    publish_once(app, settings)
    record_story(app, 1)
    again = Relay(app, settings)
    try:
        again.resume()
        assert again.position == 3
        assert again.publish_batch() == 2
    finally:
        again.close()
    assert len(consume(settings, settings.events_topic, 6, timeout_s=5)) == 5


def test_a_lost_topic_is_refilled_from_the_event_store(app: Verkosto, settings: Settings) -> None:
    record_story(app, 2)
    publish_once(app, settings)
    # As if the broker had lost the topic and it was created again: the stored id differs.
    with connect(settings.require_database_url(), autocommit=True) as conn:
        conn.execute(
            sql.SQL("UPDATE {}.relay_positions SET topic_id = 'gone'").format(sql.Identifier(settings.db_schema))
        )
    again = Relay(app, settings)
    try:
        again.resume()
        assert again.position == 0
        assert again.publish_batch() == 3
    finally:
        again.close()
