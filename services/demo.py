"""`verkosto demo`: a realistic organisation over three years, sent as Kafka commands
through the real command path (ingest, event store, relay, projections)."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.organisation import ORGANISATION_ID
from services.demo_partners import LEAVERS, OTHERS, ROLES, Plan, archetypes, dormant

UNITS = ("research", "innovation", "operations", "public_affairs")
PREFIXES = (
    "Pohjola",
    "Kaleva",
    "Saimaa",
    "Lappi",
    "Aalto",
    "Tammi",
    "Kuusi",
    "Revontuli",
    "Koski",
    "Järvi",
    "Meri",
    "Vuori",
    "Tuuli",
    "Kivi",
    "Sampo",
)
SUFFIXES = (
    "Analytics Oy",
    "Health Lab",
    "Energy Oy",
    "City Council",
    "Research Institute",
    "Foundation",
    "Robotics Oy",
    "Software Oy",
    "Water Authority",
    "Design Studio",
)
NETWORKS = (
    ("Nordic health data forum", ["information_sharing", "influence"], "member", "active", 900),
    ("Regional innovation ecosystem", ["shared_goal", "competitiveness"], "leader", "active", None),
    ("EU funding consortium", ["funding", "competence"], "member", "passive", None),
    ("Standards working group", ["mandated", "influence"], "observer", "active", None),
    ("Circular economy network", ["new_perspectives"], "member", "active", 400),
    ("Alumni industry panel", ["information_sharing"], "member", "passive", None),
)


CRITERIA = [
    {"name": "fit", "description": "How well their aims and ours match"},
    {"name": "delivery", "description": "Whether what was agreed got done, on time"},
]


@dataclass(frozen=True)
class Demo:
    """What the demo sends, and what it built: the flags each partnership must carry at
    the demo's end (an archetype each; see services/demo_partners.py)."""

    commands: list[tuple[str, dict[str, Any]]]
    truth: dict[str, frozenset[str]]  # partnership id → its flags

    def flagged(self, flag: str) -> set[str]:
        return {pid for pid, flags in self.truth.items() if flag in flags}


def build(start: datetime, now: datetime, partners: int, seed: int) -> Demo:
    rng = random.Random(seed)
    out: list[tuple[str, dict[str, Any]]] = []
    span = (now - start).days
    truth: dict[str, frozenset[str]] = {}
    # Everyone evaluates on the same few criteria (keyed by the organisation's id, so its
    # commands keep their order on one partition).
    out.append(
        (str(ORGANISATION_ID), {"type": "criteria_defined", "occurred_at": start.isoformat(), "criteria": CRITERIA})
    )
    for n, (archetype, steward) in enumerate(archetypes(partners)):
        pid = str(uuid.UUID(int=rng.getrandbits(128)))
        name = f"{PREFIXES[n % len(PREFIXES)]} {SUFFIXES[(n // len(PREFIXES)) % len(SUFFIXES)]}"
        if n >= len(PREFIXES) * len(SUFFIXES):
            name += f" {n}"
        plan = Plan(rng, start, span, name, steward or rng.choice(OTHERS), rng.sample(ROLES, rng.randint(1, 2)))
        # Opened early enough for its story: a leaver's before leaving, a dormant one long ago.
        latest = min(LEAVERS.get(plan.steward, span) - 100, span * (0.2 if archetype is dormant else 0.4))
        plan.open(rng.uniform(0, latest), rng.choice(UNITS))
        truth[pid] = archetype(plan)
        out += [(pid, {**c, "partnership_id": pid}) for c in plan.cmds]
    for n, (name, purposes, role, activity, leave_after) in enumerate(NETWORKS):
        owner = (UNITS[n % len(UNITS)], OTHERS[n % len(OTHERS)])  # a unit and a steward who stay
        out += _network(rng, name, purposes, role, activity, leave_after, start, span, list(truth), owner)
    return Demo(out, truth)


def commands(start: datetime, now: datetime, partners: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """(aggregate id, command) in valid-time order per aggregate; all within the rules."""
    return build(start, now, partners, seed).commands


def networks_last(batch: list[tuple[bytes, bytes]]) -> tuple[list[tuple[bytes, bytes]], ...]:
    """Kafka messages in two waves to send one after the other: networks name partnerships
    as members, and Kafka keeps order only within a partition, so the networks' commands
    go once every partnership's have been taken."""
    networks = [m for m in batch if b'"network_id"' in m[1]]
    return [m for m in batch if b'"network_id"' not in m[1]], networks


def _at(start: datetime, day: float) -> str:
    return (start + timedelta(days=day)).isoformat()


def _network(
    rng: random.Random,
    name: str,
    purposes: list[str],
    role: str,
    activity: str,
    leave_after: int | None,
    start: datetime,
    span: int,
    members: list[str],
    owner: tuple[str, str],
) -> list[tuple[str, dict[str, Any]]]:
    nid = str(uuid.UUID(int=rng.getrandbits(128)))
    joined = rng.uniform(0, 60)
    best_before = (start + timedelta(days=leave_after - 30)).date().isoformat() if leave_after else None
    cmds: list[dict[str, Any]] = [
        {
            "type": "network_joined",
            "name": name,
            "purposes": purposes,
            "role": role,
            "activity": activity,
            "best_before": best_before,
            "owner_unit": owner[0],
            "steward": owner[1],
            "occurred_at": _at(start, joined),
        }
    ]
    for member in rng.sample(members, 3):
        cmds.append({"type": "member_added", "partnership_id": member, "occurred_at": _at(start, joined + 1)})
    day = joined + 1
    end = min(leave_after or span - 1, span - 1)
    while True:
        day += rng.uniform(40, 120)
        if day >= end:
            break
        if activity == "active":
            cmds.append(
                {
                    "type": "network_contribution_logged",
                    "our_effort_hours": rng.randint(2, 30),
                    "occurred_at": _at(start, day),
                }
            )
        if rng.random() < 0.3:
            cmds.append(
                {
                    "type": "network_evaluated",
                    "factors": {"value": rng.choice([0.1, 1, 10])},
                    "occurred_at": _at(start, day + 1),
                }
            )
    if leave_after:
        cmds.append({"type": "network_left", "reason": "best_before_passed", "occurred_at": _at(start, leave_after)})
    return [(nid, {**c, "network_id": nid}) for c in cmds]


def messages(start: datetime, now: datetime, partners: int, seed: int) -> list[tuple[bytes, bytes]]:
    return [
        (key.encode(), json.dumps({**cmd, "actor": "demo"}).encode())
        for key, cmd in commands(start, now, partners, seed)
    ]


def load(settings: Any, partners: int = 120, seed: int = 7, wait_s: float = 300.0) -> tuple[int, int]:
    """Sends the demo and waits until the ingest has taken every command; returns
    (accepted, refused)."""
    import time
    from datetime import UTC

    from services.bus import producer
    from services.db import connect
    from services.metrics import read_health

    now = datetime.now(UTC)  # the one clock read: the demo's three years end today
    batch = messages(now - timedelta(days=3 * 365), now, partners, seed)

    def kafka_totals() -> tuple[int, int]:
        with connect(settings.require_database_url()) as conn:
            counts = read_health(conn, settings.db_schema).commands
        accepted = sum(n for (src, outcome, _), n in counts.items() if src == "kafka" and outcome != "rejected")
        refused = sum(n for (src, outcome, _), n in counts.items() if src == "kafka" and outcome == "rejected")
        return accepted, refused

    before = kafka_totals()
    deadline = time.monotonic() + wait_s
    sent = 0
    for wave in networks_last(batch):
        send = producer(settings)
        for key, value in wave:
            send.send(settings.commands_topic, key=key, value=value)
        send.flush()
        send.close()
        sent += len(wave)
        while True:
            accepted, refused = kafka_totals()
            if accepted + refused - sum(before) >= sent:
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"the ingest took {accepted + refused - sum(before)} of {len(batch)} demo commands")
            time.sleep(0.2)
    return accepted - before[0], refused - before[1]
