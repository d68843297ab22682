"""`verkosto demo`: a realistic organisation over three years, sent as Kafka commands
through the real command path (ingest, event store, relay, projections)."""

from __future__ import annotations

import json
import random
import uuid
from datetime import datetime, timedelta
from typing import Any

UNITS = ("research", "innovation", "operations", "public_affairs")
STEWARDS = ("Aino", "Eero", "Helmi", "Ilmari", "Kaisa", "Lauri", "Minna", "Niilo", "Oona", "Paavo", "Ronja", "Sisu")
LEAVERS = {"Eero": 520, "Minna": 800}  # stewards who leave, days after the start
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
ROLES = ("customer", "funder", "user", "researcher", "authority", "supplier")
NETWORKS = (
    ("Nordic health data forum", ["information_sharing", "influence"], "member", "active", 900),
    ("Regional innovation ecosystem", ["shared_goal", "competitiveness"], "leader", "active", None),
    ("EU funding consortium", ["funding", "competence"], "member", "passive", None),
    ("Standards working group", ["mandated", "influence"], "observer", "active", None),
    ("Circular economy network", ["new_perspectives"], "member", "active", 400),
    ("Alumni industry panel", ["information_sharing"], "member", "passive", None),
)


def commands(start: datetime, now: datetime, partners: int, seed: int) -> list[tuple[str, dict[str, Any]]]:
    """(aggregate id, command) in valid-time order per aggregate; all within the rules."""
    rng = random.Random(seed)
    out: list[tuple[str, dict[str, Any]]] = []
    span = (now - start).days
    partnership_ids = []
    for n in range(partners):
        pid = str(uuid.UUID(int=rng.getrandbits(128)))
        partnership_ids.append(pid)
        out += _partnership(rng, pid, n, start, span)
    for name, purposes, role, activity, leave_after in NETWORKS:
        out += _network(rng, name, purposes, role, activity, leave_after, start, span, partnership_ids)
    return out


def _at(start: datetime, day: float) -> str:
    return (start + timedelta(days=day)).isoformat()


def _partnership(rng: random.Random, pid: str, n: int, start: datetime, span: int) -> list[tuple[str, dict[str, Any]]]:
    opened = rng.uniform(0, span * 0.8)
    # Nobody is made steward after they have left.
    steward = rng.choice([s for s in STEWARDS if LEAVERS.get(s, span) > opened + 1])
    name = f"{PREFIXES[n % len(PREFIXES)]} {SUFFIXES[(n // len(PREFIXES)) % len(SUFFIXES)]}"
    if n >= len(PREFIXES) * len(SUFFIXES):
        name += f" {n}"
    cmds: list[dict[str, Any]] = [
        {
            "type": "partnership_opened",
            "partner": {"name": name, "kind": "organisation", "roles": rng.sample(ROLES, rng.randint(1, 2))},
            "owner_unit": rng.choice(UNITS),
            "steward": steward,
            "occurred_at": _at(start, opened),
        }
    ]
    day, stage, stages = opened, "analyse", ["prioritise", "maintain", "manage"]
    good = rng.random() < 0.7
    while day < span - 1:
        day += rng.expovariate(1 / 35)
        if day >= span - 1:
            break
        if steward in LEAVERS and day >= LEAVERS[steward]:
            left_on = LEAVERS[steward]
            steward = rng.choice([s for s in STEWARDS if s not in LEAVERS])
            cmds.append(
                {
                    "type": "ownership_transferred",
                    "owner_unit": cmds[0]["owner_unit"],
                    "steward": steward,
                    "reason": "steward_left",
                    "occurred_at": _at(start, max(left_on, opened + 0.5)),
                }
            )
            continue
        roll = rng.random()
        at = _at(start, day)
        if roll < 0.45:
            cmds.append(
                {
                    "type": "contact_logged",
                    "channel": rng.choice(["meeting", "call", "email", "visit"]),
                    "direction": rng.choice(["inbound", "outbound"]),
                    "participants": [steward],
                    "occurred_at": at,
                }
            )
        elif roll < 0.6:
            cmds.append(
                {
                    "type": "interest_signalled",
                    "direction": rng.choice(["inbound", "outbound"]),
                    "strength": rng.randint(1, 3),
                    "occurred_at": at,
                }
            )
        elif roll < 0.72:
            cmds.append(
                {
                    "type": "joint_activity_recorded",
                    "kind": rng.choice(["project", "workshop", "pilot"]),
                    "title": "Joint work",
                    "our_effort_hours": rng.randint(4, 80),
                    "their_effort_hours": rng.randint(4, 80),
                    "occurred_at": at,
                }
            )
        elif roll < 0.82:
            factor = [10, 1] if good else [0.1, 1]
            cmds.append(
                {
                    "type": "evaluated",
                    "factors": {"fit": rng.choice(factor), "delivery": rng.choice(factor)},
                    "occurred_at": at,
                }
            )
        elif roll < 0.9:
            now_ = rng.choice(["--", "-", "+", "++"])
            cmds.append({"type": "segmented", "now": now_, "future": rng.choice(["-", "+", "++"]), "occurred_at": at})
        elif stages:
            stage = stages.pop(0)
            cmds.append({"type": "stage_changed", "stage": stage, "reason": "annual_review", "occurred_at": at})
        elif not good and stage != "wind_down":
            stage = "wind_down"
            cmds.append({"type": "stage_changed", "stage": stage, "reason": "low_value", "occurred_at": at})
        elif stage == "wind_down":
            cmds.append({"type": "stage_changed", "stage": "ended", "reason": "wound_down", "occurred_at": at})
            break
    return [(pid, {**c, "partnership_id": pid}) for c in cmds]


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
    send = producer(settings)
    for key, value in batch:
        send.send(settings.commands_topic, key=key, value=value)
    send.flush()
    send.close()
    deadline = time.monotonic() + wait_s
    while True:
        accepted, refused = kafka_totals()
        if accepted + refused - sum(before) >= len(batch):
            return accepted - before[0], refused - before[1]
        if time.monotonic() > deadline:
            raise TimeoutError(f"the ingest took {accepted + refused - sum(before)} of {len(batch)} demo commands")
        time.sleep(0.2)
