"""Topics `verkosto topics` / `verkosto up` create: replicated ones need two in-sync
replicas to acknowledge (acks=all), so a write survives the loss of one broker."""

from __future__ import annotations

from services.bus import topic_configs
from services.settings import TANSU_GROUP_TIMEOUTS, Settings, tansu_environment


def test_a_single_replica_keeps_the_broker_defaults() -> None:
    assert topic_configs(Settings(topic_replication=1)) == {}


def test_replicated_topics_need_two_in_sync_replicas() -> None:
    assert topic_configs(Settings(topic_replication=2)) == {"min.insync.replicas": "2"}
    assert topic_configs(Settings(topic_replication=3)) == {"min.insync.replicas": "2"}
    assert topic_configs(Settings(topic_replication=5, topic_min_insync_replicas=3)) == {"min.insync.replicas": "3"}


def test_group_timeouts_are_kafkas_own_unless_tansu_is_embedded(monkeypatch: object) -> None:
    for name in tansu_environment():
        monkeypatch.delenv(name, raising=False)  # type: ignore[attr-defined]
    defaults = Settings()
    assert (
        defaults.kafka_session_timeout_ms,
        defaults.kafka_heartbeat_interval_ms,
        defaults.kafka_max_poll_interval_ms,
    ) == (45_000, 3_000, 300_000)
    for name, value in tansu_environment().items():
        monkeypatch.setenv(name, value)  # type: ignore[attr-defined]
    tansu = Settings()
    assert {name: getattr(tansu, name) for name in TANSU_GROUP_TIMEOUTS} == TANSU_GROUP_TIMEOUTS
