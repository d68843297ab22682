"""The organisation the scale benchmark builds: the demo's partnerships over several years
(services/demo.py, ~25 events each over six years), a few long partnerships with thousands
of events each, and a handful of commands from a rare actor for the audit search."""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services import demo

ACTOR = "scale-bench"
RARE_ACTOR = "rare-auditor"
RARE_COMMANDS = 5


@dataclass
class Organisation:
    commands: list[tuple[str, dict[str, Any]]]  # (Kafka key, command with its actor), in order
    long_ids: list[str]
    short_ids: list[str]
    start: datetime
    now: datetime

    def messages(self) -> list[tuple[bytes, bytes]]:
        return [(key.encode(), json.dumps(cmd).encode()) for key, cmd in self.commands]


def long_partnership(
    rng: random.Random, pid: str, n: int, start: datetime, days: float, events: int
) -> list[dict[str, Any]]:
    """An opening and ``events - 1`` contacts, interests, joint work, evaluations and
    segmentations spread evenly over ``days``: every one of them accepted by the rules."""

    def at(day: float) -> str:
        return (start + timedelta(days=day)).isoformat()

    out: list[dict[str, Any]] = [
        {
            "type": "partnership_opened",
            "partnership_id": pid,
            "partner": {"name": f"Long Partner {n} Oyj", "kind": "organisation", "roles": ["customer", "funder"]},
            "owner_unit": "research",
            "steward": "Aino",
            "occurred_at": at(0.0),
        }
    ]
    step = (days - 1) / max(events, 1)
    for i in range(1, events):
        day, roll = i * step, rng.random()
        base = {"partnership_id": pid, "occurred_at": at(day)}
        if roll < 0.5:
            out.append(
                {
                    **base,
                    "type": "contact_logged",
                    "channel": "meeting",
                    "direction": "outbound",
                    "participants": ["Aino"],
                }
            )
        elif roll < 0.7:
            out.append({**base, "type": "interest_signalled", "direction": "inbound", "strength": rng.randint(1, 3)})
        elif roll < 0.85:
            out.append(
                {
                    **base,
                    "type": "joint_activity_recorded",
                    "kind": "project",
                    "title": "Joint work",
                    "our_effort_hours": rng.randint(4, 80),
                    "their_effort_hours": rng.randint(4, 80),
                }
            )
        elif roll < 0.95:
            out.append({**base, "type": "evaluated", "factors": {"fit": 10, "delivery": 1}})
        else:
            out.append({**base, "type": "segmented", "now": "+", "future": rng.choice(["+", "++"])})
    return out


def organisation(
    partners: int, long: int, long_events: int, years: float, now: datetime, seed: int = 11
) -> Organisation:
    # Not the demo's seed: its generator would give the long partnerships its first ids.
    rng = random.Random(f"long-{seed}")
    start = now - timedelta(days=365 * years)
    short = demo.commands(start, now, max(partners - long, 3), seed)
    commands = [(key, {**cmd, "actor": ACTOR}) for key, cmd in short]
    ended = {cmd["partnership_id"] for _, cmd in short if cmd["type"] == "stage_changed" and cmd["stage"] == "ended"}
    # Partnerships still open at the end: later contacts to them are accepted.
    short_ids = list(
        dict.fromkeys(
            cmd["partnership_id"]
            for _, cmd in short
            if cmd["type"] == "partnership_opened" and cmd["partnership_id"] not in ended
        )
    )
    long_ids = [str(uuid.UUID(int=rng.getrandbits(128))) for _ in range(long)]
    span = (now - start).days
    streams = [long_partnership(rng, pid, n, start, span, long_events) for n, pid in enumerate(long_ids)]
    chunks: list[list[dict[str, Any]]] = []
    while any(streams):
        for stream in streams:
            if stream:
                chunks.append(stream[:50])
                del stream[:50]
    # Interleaved with the rest, as a real organisation's traffic is; each stream in order.
    every = max(1, len(commands) // (len(chunks) + 1))
    merged: list[tuple[str, dict[str, Any]]] = []
    taken = 0
    for i, item in enumerate(commands):
        merged.append(item)
        if (i + 1) % every == 0 and taken < len(chunks):
            merged.extend((cmd["partnership_id"], {**cmd, "actor": ACTOR}) for cmd in chunks[taken])
            taken += 1
    for chunk in chunks[taken:]:
        merged.extend((cmd["partnership_id"], {**cmd, "actor": ACTOR}) for cmd in chunk)
    commands = merged
    for i in range(RARE_COMMANDS):
        pid = short_ids[i % len(short_ids)]
        commands.append(
            (
                pid,
                {
                    "type": "contact_logged",
                    "partnership_id": pid,
                    "channel": "email",
                    "direction": "inbound",
                    "participants": ["auditor"],
                    "actor": RARE_ACTOR,
                },
            )
        )
    return Organisation(commands, long_ids, short_ids, start, now)


def contact(pid: str, actor: str = ACTOR) -> dict[str, Any]:
    """A contact logged now: valid on any open partnership."""
    return {
        "type": "contact_logged",
        "partnership_id": pid,
        "channel": "call",
        "direction": "inbound",
        "participants": ["Aino"],
        "actor": actor,
    }
