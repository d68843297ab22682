"""The demo's partnerships, each built to a known archetype, so the demo is a test oracle.

Every archetype states which lifecycle flags its partnerships must carry at the demo's
end (and so, which they must not): a steady partner served as its cell asks carries none;
a rising one shows two kinds of evidence; a dormant one was trusted and went quiet; a
funder's lopsided effort is normal, a researcher's is unfair. The default operating model
(domain/operating_model.py) decides what "as its cell asks" means.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from domain.operating_model import DEFAULT_MODEL
from domain.values import Importance

Command = dict[str, Any]
OVERLOADED = "Aino"  # holds six '++' partnerships: more than the five one person can lead
LEAVERS = {"Eero": 520, "Minna": 800}  # stewards who leave, days after the start
OTHERS = ("Helmi", "Ilmari", "Kaisa", "Lauri", "Niilo", "Oona", "Paavo", "Ronja", "Sisu")
ROLES = ("customer", "funder", "user", "researcher", "authority", "supplier")
STEADY_CELLS = [(n, f) for n in "- + --".split() for f in "- + --".split()]


class Plan:
    """Builds one partnership's story day by day (days after the demo's start)."""

    def __init__(self, rng: random.Random, start: datetime, span: int, name: str, steward: str, roles: list[str]):
        self.rng, self.start, self.span = rng, start, span
        self.steward = steward
        self.cmds: list[Command] = []
        self.opened = 0.0
        self.name, self.roles = name, roles

    def at(self, day: float) -> str:
        return (self.start + timedelta(days=min(day, self.span - 0.5))).isoformat()

    def open(self, day: float, unit: str) -> None:
        self.opened = day
        partner = {"name": self.name, "kind": "organisation", "roles": self.roles}
        self.add(day, "partnership_opened", partner=partner, owner_unit=unit, steward=self.steward)

    def add(self, day: float, event_type: str, **fields: Any) -> None:
        self.cmds.append({"type": event_type, "occurred_at": self.at(day), **fields})

    def contacts(self, first: float, last: float, every: float) -> None:
        day = first
        while day <= last:
            direction = self.rng.choice(["inbound", "outbound"])
            channel = self.rng.choice(["meeting", "call", "email", "visit"])
            self.add(day, "contact_logged", channel=channel, direction=direction, participants=[self.steward])
            day += every * self.rng.uniform(0.7, 1.0)

    def work(self, first: float, last: float, every: float, ours: float, theirs: float) -> None:
        day = first
        while day <= last:
            self.add(day, "joint_activity_recorded", kind=self.rng.choice(["project", "workshop", "pilot"]),
                     title="Joint work", our_effort_hours=ours, their_effort_hours=theirs)  # fmt: skip
            day += every

    def evaluate(self, days: list[float], outcomes: list[float]) -> None:
        for day, outcome in zip(days, outcomes, strict=True):
            # Two criteria whose product is the outcome: 10 → (10, 1), 0.1 → (0.1, 1), 1 → (1, 1).
            self.add(day, "evaluated", factors={"fit": outcome, "delivery": 1})

    def segment(self, day: float, now: str, future: str) -> None:
        self.add(day, "segmented", now=now, future=future)

    def stage(self, day: float, stage: str, reason: str = "annual_review") -> None:
        self.add(day, "stage_changed", stage=stage, reason=reason)

    def led_as_cell(self, day: float, now: str, future: str) -> None:
        """Prioritised, then maintained or managed as the cell's mode says."""
        self.stage(day, "prioritise")
        mode = DEFAULT_MODEL.cell(Importance(now), Importance(future)).mode.value
        self.stage(day + 30, mode)


def cadence(now: str, future: str) -> int:
    return DEFAULT_MODEL.cell(Importance(now), Importance(future)).cadence_days


def budget(now: str, future: str) -> float:
    return DEFAULT_MODEL.cell(Importance(now), Importance(future)).yearly_effort_hours


def _served(p: Plan, now: str, future: str, until: float, hours_share: float = 0.4, outcome: float = 1.0) -> None:
    """Contact within the cadence, balanced joint work within the budget, consistent
    evaluations: a partnership served as its cell asks, up to ``until``."""
    first = p.opened + 1
    p.contacts(first, until, cadence(now, future) * 0.6)
    per_activity = max(1.0, round(budget(now, future) * hours_share / 6))
    theirs = round(per_activity * p.rng.uniform(0.7, 1.4), 1)
    p.work(first + 10, until, 60, per_activity, theirs)
    days = [d for d in (first + 100, first + 400, first + 700) if d < until]
    p.evaluate(days, [outcome] * len(days))


def steady(p: Plan) -> frozenset[str]:
    now, future = p.rng.choice(STEADY_CELLS)
    p.segment(p.opened + 5, now, future)
    p.led_as_cell(p.opened + 20, now, future)
    _served(p, now, future, p.span - 2, outcome=p.rng.choice([1.0, 10.0]))
    return frozenset()


def overloaded(p: Plan) -> frozenset[str]:
    p.segment(p.opened + 5, "++", "++")
    p.led_as_cell(p.opened + 20, "++", "++")
    _served(p, "++", "++", p.span - 2, outcome=10.0)
    return frozenset({"steward_overloaded"})


def rising(p: Plan) -> frozenset[str]:
    p.segment(p.opened + 5, "-", "+")
    p.led_as_cell(p.opened + 20, "-", "+")
    p.contacts(p.opened + 1, p.span - 2, 30)
    p.work(p.opened + 10, p.span - 200, 90, 4, 4)
    p.segment(p.span - 150, "+", "++")  # the steward saw it coming
    p.stage(p.span - 140, "manage")
    for back in (160, 100, 40):  # they keep asking
        p.add(p.span - back, "interest_signalled", direction="inbound", strength=2)
    p.work(p.span - 170, p.span - 5, 30, 12, 12)  # and we do more together
    return frozenset({"rising"})


def dormant(p: Plan) -> frozenset[str]:
    p.segment(p.opened + 5, "+", "+")
    p.led_as_cell(p.opened + 20, "+", "+")
    quiet_from = p.opened + 480  # sixteen months of joint work, then silence
    p.contacts(p.opened + 1, quiet_from, 30)
    p.work(p.opened + 10, quiet_from, 20, 30, 30)
    p.evaluate([p.opened + 150, p.opened + 300, p.opened + 450], [10.0, 10.0, 10.0])
    return frozenset({"dormant_but_trusted", "under_served"})


def under_served(p: Plan) -> frozenset[str]:
    now, future = p.rng.choice([("+", "+"), ("-", "-"), ("-", "+")])
    p.segment(p.opened + 5, now, future)
    p.led_as_cell(p.opened + 20, now, future)
    # Contacts only (trust stays low), stopping well over a cadence before the end.
    p.contacts(p.opened + 1, p.span - cadence(now, future) * 1.6, cadence(now, future) * 0.6)
    return frozenset({"under_served"})


def over_served(p: Plan) -> frozenset[str]:
    now, future = p.rng.choice([("--", "--"), ("-", "-"), ("-", "--")])
    p.segment(p.opened + 5, now, future)
    p.led_as_cell(p.opened + 20, now, future)
    p.contacts(p.opened + 1, p.span - 2, 30)
    hours = round(budget(now, future) * 3 / 12, 1)  # three times the budget a year
    p.work(p.opened + 10, p.span - 2, 30, hours, hours)
    p.evaluate([p.span - 300, p.span - 100], [10.0, 10.0])  # worth it, but more than its cell
    return frozenset({"over_served"})


def lopsided(role: str, flags: frozenset[str]) -> Callable[[Plan], frozenset[str]]:
    def build(p: Plan) -> frozenset[str]:
        if p.roles != [role]:  # the roles changed early on: what it plays for us now decides
            p.roles = [role]
            p.add(p.opened + 1, "roles_changed", roles=[role])
        p.segment(p.opened + 5, "+", "+")
        p.led_as_cell(p.opened + 20, "+", "+")
        p.contacts(p.opened + 1, p.span - 2, 50)
        p.work(p.opened + 10, p.span - 2, 60, 10, 2)  # we put in five times their hours
        p.evaluate([p.span - 300, p.span - 100], [10.0, 10.0])
        return flags

    return build


def ambition_mismatch(p: Plan) -> frozenset[str]:
    p.segment(p.opened + 5, "+", "+")
    p.led_as_cell(p.opened + 20, "+", "+")
    p.contacts(p.opened + 1, p.span - 2, 50)
    p.evaluate([p.span - 330, p.span - 220, p.span - 110], [10.0, 0.1, 10.0])
    return frozenset({"wind_down_candidate"})


def mode_mismatch(p: Plan) -> frozenset[str]:
    p.segment(p.opened + 5, "-", "-")
    p.stage(p.opened + 20, "prioritise")
    p.stage(p.opened + 50, "manage")  # led actively, though its cell asks for upkeep
    _served(p, "-", "-", p.span - 2)
    return frozenset({"mode_mismatch"})


def handed_over(pending: bool) -> Callable[[Plan], frozenset[str]]:
    def build(p: Plan) -> frozenset[str]:
        left = LEAVERS[p.steward]
        p.segment(p.opened + 5, "+", "+")
        p.led_as_cell(p.opened + 20, "+", "+")
        p.contacts(p.opened + 1, left - 1, 50)
        p.steward = p.rng.choice(OTHERS)
        unit = p.cmds[0]["owner_unit"]
        p.add(left, "ownership_transferred", owner_unit=unit, steward=p.steward, reason="steward_left")
        if pending:
            return frozenset({"needs_handover", "under_served"})
        p.contacts(left + 10, p.span - 2, 50)  # the successor took it up
        return frozenset()

    return build


def winding_down(p: Plan) -> frozenset[str]:
    p.segment(p.opened + 5, "-", "--")
    p.led_as_cell(p.opened + 20, "-", "--")
    p.contacts(p.opened + 1, p.span - 400, 100)
    p.stage(p.span - 380, "wind_down", "low_value")  # decided: quiet is expected now
    return frozenset()


# (archetype, share of the portfolio, steward chooser): the rest are steady.
ARCHETYPES: list[tuple[Callable[[Plan], frozenset[str]], float, str | None]] = [
    (rising, 0.07, None),
    (dormant, 0.07, None),
    (under_served, 0.07, None),
    (over_served, 0.06, None),
    (lopsided("researcher", frozenset({"wind_down_candidate"})), 0.05, None),
    (lopsided("funder", frozenset()), 0.05, None),
    (ambition_mismatch, 0.05, None),
    (mode_mismatch, 0.05, None),
    (handed_over(pending=True), 0.05, "Minna"),
    (handed_over(pending=False), 0.04, "Eero"),
    (winding_down, 0.03, None),
]


def archetypes(partners: int) -> list[tuple[Callable[[Plan], frozenset[str]], str | None]]:
    chosen: list[tuple[Callable[[Plan], frozenset[str]], str | None]] = []
    if partners >= 40:
        chosen += [(overloaded, OVERLOADED)] * 6
    for build, share, steward in ARCHETYPES:
        chosen += [(build, steward)] * max(1, round(partners * share))
    chosen = chosen[:partners]
    return chosen + [(steady, None)] * (partners - len(chosen))
