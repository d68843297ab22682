"""The Kafka command ingest against a real broker and real PostgreSQL."""

from __future__ import annotations

import time
import uuid

from kafka import TopicPartition

from domain.partnership import Partnership
from services.application import Verkosto
from services.ingest import CommandIngest
from services.settings import Settings
from tests.kafka_helpers import RunningIngest, command, consume, contact, header, opened, produce


def test_valid_commands_are_recorded_and_bad_ones_dead_lettered(
    app: Verkosto, settings: Settings, running: RunningIngest
) -> None:
    pid = uuid.uuid4()
    produce(
        settings,
        [
            command(opened(pid)),
            command(contact(pid)),
            (b"junk", b"{not json"),
            command({"type": "contact_logged", "partnership_id": str(pid)}),  # fields missing
            command(contact(pid), actor=""),
            command({"type": "stage_changed", "partnership_id": str(pid), "stage": "ended", "reason": "x"}),
            command(contact(uuid.uuid4())),
            command(contact(pid), actor="x" * 300),  # valid JSON and command, but no valid event
            (b"deep", b"[" * 100_000),  # json.loads raises RecursionError, not a JSON error
            command(contact(pid)),
        ],
    )
    running.until(lambda: running.ingest.recorded + running.ingest.dead_lettered >= 10)
    assert app.get(pid, Partnership).contacts == 2
    dead = consume(settings, settings.dlq_topic, 7)
    reasons = sorted(header(r, "reason") for r in dead)
    assert reasons == sorted(
        [
            "malformed_json",
            "invalid_command",
            "missing_actor",
            "illegal_stage_transition",
            "not_found",
            "invalid_command",
            "malformed_json",
        ]
    )
    junk = next(r for r in dead if r.key == b"junk")
    assert junk.value == b"{not json" and junk.key == b"junk"
    assert header(junk, "original_topic") == settings.commands_topic
    assert int(header(junk, "original_offset")) >= 0
    details = [header(r, "detail") for r in dead if header(r, "reason") == "invalid_command"]
    assert any("channel" in d for d in details) and any("actor" in d for d in details)


def test_a_restarted_ingest_resumes_from_its_stored_position(app: Verkosto, settings: Settings) -> None:
    pid = uuid.uuid4()
    produce(settings, [command(opened(pid))] + [command(contact(pid)) for _ in range(5)])
    first = RunningIngest(app, settings)
    first.until(lambda: first.ingest.recorded >= 6)
    first.close()
    produce(settings, [command(contact(pid)) for _ in range(3)])
    second = RunningIngest(app, settings)
    second.until(lambda: second.ingest.recorded >= 3)
    time.sleep(1.0)  # anything re-read from the start would show up here
    second.close()
    assert app.get(pid, Partnership).contacts == 8
    assert second.ingest.recorded == 3


def test_a_redelivered_batch_is_not_recorded_twice(app: Verkosto, settings: Settings) -> None:
    pid = uuid.uuid4()
    produce(settings, [command(opened(pid)), command(contact(pid)), command(contact(pid))])
    records = consume(settings, settings.commands_topic, 3)
    ingest = CommandIngest(app, settings)
    try:
        ingest.consumer.assign([TopicPartition(settings.commands_topic, p) for p in range(settings.topic_partitions)])
        ingest.handle(records)
        ingest.handle(records)  # the same messages again, as after a lost commit
    finally:
        ingest.close()
    assert app.get(pid, Partnership).version == 3
    assert ingest.recorded == 3


def test_a_command_id_reused_across_messages_records_once(
    app: Verkosto, settings: Settings, running: RunningIngest
) -> None:
    pid = uuid.uuid4()
    produce(settings, [command(opened(pid))] + [command(contact(pid, command_id="mail-42"))] * 3)
    running.until(lambda: running.ingest.recorded >= 4)
    assert app.get(pid, Partnership).contacts == 1
