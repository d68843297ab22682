"""Verkosto's components as separate processes (`verkosto run X`), as a deployment runs them,
against one PostgreSQL and an Apache Kafka (one node or a cluster); a command sender that
counts the broker's acknowledgements; and the figures that say whether anything was lost
or applied twice (read from PostgreSQL and from the events topic itself).

Used by tests/e2e/test_kafka_cluster.py and tests/e2e/test_scale_out.py.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from psycopg import sql

ROOT = Path(__file__).resolve().parents[2]
PYTHON = str(ROOT / ".venv" / "bin" / "python") if (ROOT / ".venv" / "bin" / "python").exists() else sys.executable
TRUST_TYPES = {"partnership_opened", "contact_logged", "interest_signalled", "joint_activity_recorded", "evaluated"}


def wait_until(condition: Any, timeout_s: float, what: str, every_s: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s: {what}")
        time.sleep(every_s)


# Deployment ----------------------------------------------------------------------------


class Deployment:
    """One Verkosto: its schema, topics, consumer groups and the environment its
    processes get (nothing else of the caller's VERKOSTO_* leaks in)."""

    def __init__(
        self,
        database_url: str,
        bootstrap: str,
        work: Path,
        *,
        partitions: int = 3,
        replication: int = 1,
        extra: dict[str, str] | None = None,
    ) -> None:
        name = f"sc_{uuid.uuid4().hex[:8]}"
        self.name = name
        self.database_url = database_url
        self.bootstrap = bootstrap
        self.work = work
        self.partitions = partitions
        self.replication = replication
        work.mkdir(parents=True, exist_ok=True)
        base = {k: v for k, v in os.environ.items() if not k.startswith("VERKOSTO_")}
        self.env: dict[str, str] = {
            **base,
            "VERKOSTO_DATABASE_URL": database_url,
            "VERKOSTO_KAFKA_BOOTSTRAP": bootstrap,
            "VERKOSTO_DB_SCHEMA": name,
            "VERKOSTO_DATA_DIR": str(work / "data"),
            "VERKOSTO_COMMANDS_TOPIC": f"{name}.commands",
            "VERKOSTO_EVENTS_TOPIC": f"{name}.events",
            "VERKOSTO_DLQ_TOPIC": f"{name}.dlq",
            "VERKOSTO_INGEST_GROUP": f"{name}-ingest",
            "VERKOSTO_PROJECTOR_GROUP": f"{name}-projector",
            "VERKOSTO_TOPIC_PARTITIONS": str(partitions),
            "VERKOSTO_TOPIC_REPLICATION": str(replication),
            # A member killed with -9 holds its partitions until the session times out:
            # 10 s instead of the client default 45 s keeps the stall short.
            "VERKOSTO_KAFKA_SESSION_TIMEOUT_MS": "10000",
            "VERKOSTO_KAFKA_HEARTBEAT_INTERVAL_MS": "3000",
            "VERKOSTO_KAFKA_MAX_POLL_INTERVAL_MS": "60000",
            "VERKOSTO_LOG_FORMAT": "text",
            **(extra or {}),
        }
        self.components: list[Component] = []

    @property
    def commands_topic(self) -> str:
        return self.env["VERKOSTO_COMMANDS_TOPIC"]

    @property
    def events_topic(self) -> str:
        return self.env["VERKOSTO_EVENTS_TOPIC"]

    @property
    def dlq_topic(self) -> str:
        return self.env["VERKOSTO_DLQ_TOPIC"]

    def cli(
        self, *args: str, timeout_s: float = 120.0, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [PYTHON, "-m", "services.cli", *args],
            cwd=ROOT,
            env=env or self.env,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def migrate(self) -> None:
        done = self.cli("migrate")
        assert done.returncode == 0, done.stdout + done.stderr

    def create_topics(self, min_insync: int | None = None) -> None:
        """The three topics, with ``min.insync.replicas`` when replicated (acks=all then
        needs that many replicas to acknowledge)."""
        configs = {"min.insync.replicas": str(min_insync)} if min_insync else {}
        admin = KafkaAdminClient(bootstrap_servers=self.bootstrap, request_timeout_ms=30_000)
        try:
            admin.create_topics(
                [
                    NewTopic(t, self.partitions, self.replication, topic_configs=configs)
                    for t in (self.commands_topic, self.events_topic, self.dlq_topic)
                ]
            )
            names = [self.commands_topic, self.events_topic, self.dlq_topic]

            def complete() -> bool:  # a new topic's metadata reaches every broker shortly after
                described = admin.describe_topics(names)
                return all(
                    t.get("error_code", 0) == 0
                    and len(t["partitions"]) == self.partitions
                    and all(
                        len(p["replica_nodes"]) == self.replication and p["leader_id"] >= 0 for p in t["partitions"]
                    )
                    for t in described
                )

            wait_until(complete, 30, f"{names} to be described with {self.partitions} partitions", 0.2)
        finally:
            admin.close()

    def start(self, kind: str, label: str | None = None, **env: str) -> Component:
        component = Component(
            kind, label or f"{kind}-{sum(c.kind == kind for c in self.components) + 1}", {**self.env, **env}, self.work
        )
        component.start()
        self.components.append(component)
        return component

    def assert_alive(self) -> None:
        """Fails at once (with its log) if a running component has exited."""
        for component in self.components:
            if component.process is not None and component.process.returncode is None:
                assert component.alive(), f"{component.label} exited:\n{component.tail()}"

    def until(self, condition: Any, timeout_s: float, what: str, every_s: float = 0.5) -> Any:
        """wait_until, failing early if a component dies meanwhile."""

        def check() -> Any:
            self.assert_alive()
            return condition()

        return wait_until(check, timeout_s, what, every_s)

    def stop_all(self) -> None:
        for component in self.components:
            component.signal(signal.SIGTERM)
        for component in self.components:
            component.stop()

    def status(self) -> subprocess.CompletedProcess[str]:
        return self.cli("status", timeout_s=60)

    def catch_up(self, timeout_s: float) -> float:
        """Waits until `verkosto status` exits 0 (every lag 0) and checks every component
        is still alive; returns how long catching up took."""
        started = time.monotonic()
        self.until(lambda: self.status().returncode == 0, timeout_s, "`verkosto status` to exit 0 (lags 0)", 1.0)
        took = time.monotonic() - started
        for component in self.components:
            assert component.alive(), f"{component.label} died:\n{component.tail()}"
        return took

    def drop(self) -> None:
        from services.db import drop_everything

        drop_everything(self.database_url, self.name)


class Component:
    """`verkosto run <kind>` in a process (and session) of its own, output to a log file."""

    def __init__(self, kind: str, label: str, env: dict[str, str], work: Path) -> None:
        self.kind = kind
        self.label = label
        self.env = {**env, "VERKOSTO_DATA_DIR": str(work / label)}  # faust keeps its own directory
        self.log = work / f"{label}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.kills = 0
        self.lines_before_start = 0

    def start(self) -> None:
        Path(self.env["VERKOSTO_DATA_DIR"]).mkdir(parents=True, exist_ok=True)
        self.lines_before_start = len(self._lines())
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                [PYTHON, "-m", "services.cli", "run", self.kind],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill9(self) -> None:
        """SIGKILL to this process only (by its pid): a crash, nothing closed or flushed."""
        assert self.process is not None and self.alive(), f"{self.label} is not running"
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        self.kills += 1

    def restart(self) -> None:
        if self.alive():
            self.stop()
        self.start()

    def signal(self, signum: int) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signum)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        return self.process.returncode

    def _lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines() if self.log.exists() else []

    def count(self, text: str, since_start: bool = False) -> int:
        """Lines of its log containing ``text`` (e.g. "starts again in": a rebuilt component),
        all of them or only those since it was last started."""
        lines = self._lines()[self.lines_before_start if since_start else 0 :]
        return sum(1 for line in lines if text in line)

    def tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


# Commands -----------------------------------------------------------------------------


def opening(pid: str, n: int) -> dict[str, Any]:
    return {
        "type": "partnership_opened",
        "partnership_id": pid,
        "command_id": f"open-{pid}",
        "partner": {"name": f"Partner {n} Oy", "kind": "organisation", "roles": ["customer"]},
        "owner_unit": "research",
        "steward": "alice",
        "actor": "crm-sync",
    }


def follow_up(pid: str, n: int, rng: random.Random) -> dict[str, Any]:
    """A contact or an interest (both move trust) or a segmentation (which does not)."""
    command_id = f"cmd-{n:07d}-{uuid.uuid4().hex[:8]}"
    roll = rng.random()
    base = {"partnership_id": pid, "command_id": command_id, "actor": "crm-sync"}
    if roll < 0.6:
        return {
            **base,
            "type": "contact_logged",
            "channel": rng.choice(["email", "call", "meeting"]),
            "direction": rng.choice(["inbound", "outbound"]),
            "participants": ["alice"],
        }
    if roll < 0.85:
        return {
            **base,
            "type": "interest_signalled",
            "direction": rng.choice(["inbound", "outbound"]),
            "strength": rng.randint(1, 3),
        }
    return {**base, "type": "segmented", "now": rng.choice(["-", "+"]), "future": rng.choice(["+", "++"])}


@dataclass
class Sender:
    """Sends commands (acks=all, idempotent) from a thread, keyed by partnership, at up to
    ``rate`` a second; counts what the broker acknowledged, by command_id."""

    bootstrap: str
    topic: str
    rate: float = 200.0
    sent: list[tuple[str, Any]] = field(default_factory=list)
    send_errors: int = 0

    def __post_init__(self) -> None:
        self.producer = KafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            enable_idempotence=True,
            linger_ms=5,
            request_timeout_ms=10_000,
            delivery_timeout_ms=120_000,
            max_block_ms=60_000,
            retry_backoff_ms=200,
            reconnect_backoff_max_ms=2000,
        )
        self.stopping = threading.Event()
        self.thread: threading.Thread | None = None

    def send(self, command: dict[str, Any]) -> None:
        key = command["partnership_id"].encode()
        try:
            future = self.producer.send(self.topic, key=key, value=json.dumps(command).encode())
        except Exception:  # noqa: BLE001 - e.g. no metadata within max_block_ms: not sent
            self.send_errors += 1
            return
        self.sent.append((command["command_id"], future))

    def send_all_now(self, commands: list[dict[str, Any]], timeout_s: float = 120.0) -> None:
        for command in commands:
            self.send(command)
        self.producer.flush(timeout=timeout_s)

    def stream(self, commands: list[dict[str, Any]]) -> None:
        def run() -> None:
            interval = 1.0 / self.rate if self.rate else 0.0
            started = time.monotonic()
            for i, command in enumerate(commands):
                if self.stopping.is_set():
                    return
                self.send(command)
                if interval:
                    ahead = started + (i + 1) * interval - time.monotonic()
                    if ahead > 0:
                        time.sleep(ahead)

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def streamed(self, count: int, timeout_s: float = 120.0) -> None:
        wait_until(lambda: len(self.sent) >= count, timeout_s, f"the sender to reach {count}", 0.05)

    def finish(self, timeout_s: float = 150.0) -> None:
        if self.thread is not None:
            self.thread.join(timeout_s)
        self.producer.flush(timeout=timeout_s)
        self.producer.close(timeout=10)

    @property
    def acknowledged(self) -> set[str]:
        return {cid for cid, f in self.sent if f.is_done and f.succeeded()}

    @property
    def failed(self) -> int:
        return sum(1 for _, f in self.sent if not (f.is_done and f.succeeded()))


# Figures ------------------------------------------------------------------------------


def read_topic(bootstrap: str, topic: str, timeout_s: float = 90.0) -> list[Any]:
    """Every record of ``topic`` up to the end offsets seen at the start."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=8 * 1024 * 1024,
    )
    try:
        partitions = wait_until(lambda: consumer.partitions_for_topic(topic), 30, f"metadata of {topic}", 0.2)
        assigned = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(assigned)
        consumer.seek_to_beginning()
        ends = consumer.end_offsets(assigned)
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in assigned):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in consumer.poll(timeout_ms=500, max_records=20_000).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def published(bootstrap: str, topic: str) -> dict[str, Any]:
    """The events topic read whole: distinct events, duplicates, and each event once."""
    records = read_topic(bootstrap, topic)
    bodies = [json.loads(r.value) for r in records]
    counts = Counter(b["event_id"] for b in bodies)
    events = {b["event_id"]: b for b in bodies}
    return {
        "records": len(records),
        "distinct": len(events),
        "duplicates": sum(n - 1 for n in counts.values()),
        "events": events,
        "by_partition": Counter(r.partition for r in records),
    }


def store_figures(database_url: str, schema: str) -> dict[str, Any]:
    from projections.catalog import all_projections
    from projections.registry import active_schema
    from services.db import connect

    s = sql.Identifier(schema)
    with connect(database_url) as conn:

        def one(query: str, *identifiers: sql.Identifier) -> Any:
            """The single value of a query whose {s} is the schema and {} the identifiers."""
            row = conn.execute(sql.SQL(query).format(*identifiers, s=s)).fetchone()
            return next(iter(row.values()))

        def rows(query: str, *identifiers: sql.Identifier) -> list[dict[str, Any]]:
            return conn.execute(sql.SQL(query).format(*identifiers, s=s)).fetchall()

        figures: dict[str, Any] = {
            "command_log": one("SELECT count(*) FROM {s}.command_log"),
            "command_ids": {r["command_id"] for r in rows("SELECT command_id FROM {s}.command_log")},
            "events_stored": one("SELECT count(*) FROM {s}.verkosto_events"),
            "last_position": one("SELECT coalesce(max(notification_id), 0) FROM {s}.verkosto_events"),
            "positions": {r["notification_id"] for r in rows("SELECT notification_id FROM {s}.verkosto_events")},
            "stored_versions": {
                r["originator_id"]: r["v"]
                for r in rows(
                    "SELECT originator_id, max(originator_version) AS v FROM {s}.verkosto_events GROUP BY originator_id"
                )
            },
            "outcomes": {
                (r["source"], r["outcome"], r["reason"]): r["count"]
                for r in rows("SELECT source, outcome, reason, count FROM {s}.command_outcomes")
            },
            "relay_position": one("SELECT coalesce(max(position), 0) FROM {s}.relay_positions"),
            "projections": {},
        }
        for projection in all_projections():
            rm = active_schema(conn, schema, projection.name)
            figures["projections"][projection.name] = {
                "schema": rm,
                "applied": {
                    r["aggregate_id"]: r["version"] for r in rows("SELECT aggregate_id, version FROM {}.applied", rm)
                },
                "position": one("SELECT coalesce(max(position), 0) FROM {}.positions", rm),
                "parked": one("SELECT count(*) FROM {}.parked", rm),
            }
        figures["trust_points"] = one("SELECT count(*) FROM {}.trust_points", figures["projections"]["trust"]["schema"])
        figures["contacts_projected"] = {
            r["aggregate_id"]: r["n"]
            for r in rows(
                "SELECT p.partnership_id AS aggregate_id, count(c.at) AS n FROM {0}.partners p "
                "LEFT JOIN {0}.contacts c USING (partnership_id) GROUP BY p.partnership_id",
                figures["projections"]["lifecycle"]["schema"],
            )
        }
    return figures


def content_hashes(database_url: str, schema: str) -> dict[str, str]:
    """Each active read model's content hash (projections.rebuild.content_hash)."""
    from projections.catalog import all_projections
    from projections.rebuild import content_hash
    from projections.registry import active_schema
    from services.db import connect

    with connect(database_url) as conn:
        out = {}
        for projection in all_projections():
            rm = active_schema(conn, schema, projection.name)
            name = rm.as_string(conn).strip('"')
            out[projection.name] = content_hash(conn, name, projection)
        return out


def check_exactly_once(store: dict[str, Any], bus: dict[str, Any], acknowledged: set[str]) -> dict[str, Any]:
    """Asserts nothing acknowledged was lost and nothing applied twice; returns the figures."""
    events = list(bus["events"].values())
    lost = acknowledged - store["command_ids"]
    assert not lost, f"{len(lost)} acknowledged commands never recorded, e.g. {sorted(lost)[:5]}"
    # One event per command, so distinct command ids recorded = events stored.
    assert store["command_log"] == len(store["command_ids"]) == store["events_stored"], (
        store["command_log"],
        len(store["command_ids"]),
        store["events_stored"],
    )
    # Every stored event published (duplicates allowed on the bus, skipped by version).
    assert bus["distinct"] == store["events_stored"], (bus["distinct"], store["events_stored"])
    # Positions may have gaps (ids taken by transactions that rolled back, e.g. a killed
    # ingest's); what was stored is exactly what was published.
    assert {e["position"] for e in events} == store["positions"]
    versions = store["stored_versions"]
    for name, figures in store["projections"].items():
        assert figures["parked"] == 0, f"{name} parked events"
        assert figures["position"] == store["last_position"], (name, figures["position"], store["last_position"])
        assert figures["applied"] == versions, f"{name}: projected versions differ from stored ones"
    moving = sum(1 for e in events if e["type"] in TRUST_TYPES)
    assert store["trust_points"] == moving, (store["trust_points"], moving)
    contacts = Counter(uuid.UUID(e["aggregate_id"]) for e in events if e["type"] == "contact_logged")
    projected = {k: v for k, v in store["contacts_projected"].items() if v}
    assert projected == dict(contacts), "a contact was projected twice or not at all"
    return {
        "trust-moving events (published)": moving,
        "contacts (published = projected)": sum(contacts.values()),
        "unused notification ids (rolled-back transactions)": store["last_position"] - store["events_stored"],
    }
