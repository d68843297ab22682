"""The pipelined relay: what it sends is what the contract publishes, byte for byte, and
a page's positions are stored only once the broker has acknowledged it."""

from __future__ import annotations

import json
import uuid

from kafka import KafkaProducer
from psycopg import sql

from contract import commands as c
from contract.events import published_event
from services.application import Request, Verkosto
from services.db import connect
from services.relay import Relay
from services.relay_reader import Pacing, PageReader
from services.settings import Settings
from tests.kafka_helpers import consume, publish_all

PERSON = {"name": "Maija Meikäläinen", "kind": "person", "roles": ["customer"]}


def record(app: Verkosto, partnerships: int, contacts: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(partnerships)]
    app.execute(
        [
            Request(c.OpenPartnership(partnership_id=p, partner=PERSON, owner_unit="u", steward="sanna"), "t", "api")  # type: ignore[arg-type]
            for p in ids
        ]
    )
    app.execute(
        [
            Request(
                c.LogContact(
                    type="contact_logged", partnership_id=p, channel="call", direction="inbound", participants=("Åke",)
                ),
                "t",
                "api",
            )
            for p in ids
            for _ in range(contacts)
        ]
    )
    return ids


def stored_position(settings: Settings) -> int | None:
    with connect(settings.require_database_url(), autocommit=True) as conn:
        row = conn.execute(
            sql.SQL("SELECT position FROM {}.relay_positions WHERE relay = 'events'").format(
                sql.Identifier(settings.db_schema)
            )
        ).fetchone()
    return None if row is None else int(row["position"])


def test_each_value_is_the_published_event_as_the_contract_encodes_it(app: Verkosto, settings: Settings) -> None:
    record(app, 3, 2)  # a person partner and participants: sealed fields, unsealed on the bus
    publish_all(app, settings)
    expected = {
        n.id: json.dumps(published_event(n.topic, n.state, n.id, app.reveal)).encode()
        for n in app.recorder.select_notifications(start=1, limit=100)
    }
    records = consume(settings, settings.events_topic, len(expected))
    assert {int(dict(r.headers)["position"]): r.value for r in records} == expected
    names = {json.loads(r.value)["data"].get("partner", {}).get("name") for r in records}
    assert "Maija Meikäläinen" in names


def test_positions_are_stored_only_after_the_page_is_acknowledged(app: Verkosto, settings: Settings) -> None:
    settings = settings.model_copy(update={"relay_batch_size": 4})
    record(app, 2, 4)  # 10 events: pages of 4, 4 and 2
    relay = Relay(app, settings)
    try:
        relay.resume()
        assert relay.publish_batch() == 4
        assert stored_position(settings) is None  # sent, its acks not yet counted
        assert relay.publish_batch() == 4
        assert stored_position(settings) == 4  # the first page, once the second was sent
        assert relay.publish_batch() == 2
        assert stored_position(settings) == 8
        assert relay.publish_batch() == 0  # nothing new: what is in flight is settled
        assert stored_position(settings) == 10
        assert relay.position == 10
    finally:
        relay.close()
    assert len(consume(settings, settings.events_topic, 11, timeout_s=5)) == 10


def test_a_relay_closed_with_a_page_in_flight_stores_it_and_stops_its_reader(app: Verkosto, settings: Settings) -> None:
    record(app, 1, 2)
    relay = Relay(app, settings)
    relay.resume()
    assert relay.reader is not None
    process = relay.reader.process
    assert relay.publish_batch() == 3
    relay.close()
    assert stored_position(settings) == 3
    assert not process.is_alive()


def test_each_event_lands_on_the_partition_the_producer_picks_for_its_key(app: Verkosto, settings: Settings) -> None:
    ids = record(app, 12, 1)
    publish_all(app, settings)
    records = consume(settings, settings.events_topic, 24)
    by_key = {r.key: r.partition for r in records}
    assert len(set(by_key.values())) > 1  # the check below means something
    # A plain producer, choosing partitions itself, puts the same keys in the same places.
    producer = KafkaProducer(bootstrap_servers=settings.kafka_bootstrap)
    try:
        chosen = {str(p).encode(): producer.send(settings.events_topic, key=str(p).encode(), value=b"{}") for p in ids}
        producer.flush()
        assert {key: future.get(timeout=30).partition for key, future in chosen.items()} == by_key
    finally:
        producer.close()


def test_the_reader_answers_with_what_was_recorded_while_it_waited(app: Verkosto, settings: Settings) -> None:
    """A reader that found nothing new keeps looking: the page it answers holds the event
    recorded while it waited, not the empty read the relay would then sleep on (which,
    with pages read ahead, delayed every write's way to the read models)."""
    schema = settings.db_schema
    patient = Pacing(idle_s=0.01, hold_s=60.0)
    reader = PageReader(settings.require_database_url(), schema, 0, 100, reveal=True, pacing=patient)
    try:
        reader.wait_ready()  # both pages read ahead are now being waited for
        record(app, 1, 0)
        assert [position for position, _, _ in reader.next_page()] == [1]
    finally:
        reader.close()


def test_the_reader_says_nothing_is_new_once_its_hold_has_passed(app: Verkosto, settings: Settings) -> None:
    brief = Pacing(idle_s=0.01, hold_s=0.05)
    reader = PageReader(settings.require_database_url(), settings.db_schema, 0, 100, reveal=True, pacing=brief)
    try:
        assert reader.next_page() == []
        assert reader.next_page() == []
        record(app, 1, 1)
        pages = [reader.next_page() for _ in range(3)]  # the third is sure to be read after the record
        assert [position for page in pages for position, _, _ in page] == [1, 2]
    finally:
        reader.close()
