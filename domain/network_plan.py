"""The organisation's network plan: which networks we are in and why, and what to do next.

Each network gets one recommendation: keep, activate, park, leave (with a LeaveReason) or
left. The rules below are tried in order and the first that applies wins, so an earlier
rule always overrides a later one (a network past its best-before date is left even if it
is excellent). Measures come from ``domain.network_health``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import NamedTuple, Protocol

from domain.network_health import (
    THRESHOLDS,
    Measures,
    NetworkFacts,
    NetworkHealth,
    PlanThresholds,
    Recommendation,
    judgements,
    measure,
)
from domain.timeline import check_aware
from domain.values import LeaveReason, NetworkPurpose

__all__ = [
    "THRESHOLDS",
    "NetworkFacts",
    "NetworkHealth",
    "PlanThresholds",
    "assess",
    "network_plan",
    "plan_markdown",
]

# The plan lists what needs a decision first and what is settled last.
PLAN_ORDER: tuple[Recommendation, ...] = ("leave", "activate", "park", "keep", "left")


class Verdict(NamedTuple):
    recommendation: Recommendation
    reason: str | None
    explanation: str


Rule = Callable[[NetworkFacts, Measures, PlanThresholds], Verdict | None]


def _number(value: float | None) -> str:
    # Fixed-point, never "1e-05": readers compare these by eye.
    if value is None:
        return "–"
    return f"{value:.6f}".rstrip("0").rstrip(".")


def _hours(value: float) -> str:
    return f"{_number(value)} h"


# 1. A network we have left stays "left", with the reason recorded when we left.
def check_left(facts: NetworkFacts, m: Measures, t: PlanThresholds) -> Verdict | None:
    if not m.left or facts.left_at is None:
        return None
    why = f" ({facts.left_reason})" if facts.left_reason else ""
    return Verdict("left", facts.left_reason, f"We left on {facts.left_at.date().isoformat()}{why}.")


# 2. Past its best-before date the network's task is done or it has fallen behind: leave.
#    Rules 2 to 3c never tell us to leave a mandated network: that is its mandate owner's
#    call, so the health carries the reason for them (``for_mandate_owner``) and the
#    later rules decide what we do meanwhile.
def check_best_before_passed(facts: NetworkFacts, m: Measures, t: PlanThresholds) -> Verdict | None:
    if m.best_before_status != "passed" or m.best_before is None or m.mandated:
        return None
    return Verdict(
        "leave",
        LeaveReason.BEST_BEFORE_PASSED.value,
        f"Its best-before date {m.best_before.isoformat()} has passed: its task is done or it has fallen behind.",
    )


# 3. Recurring jumps between poor and excellent mean the members aim at different levels.
def check_ambition_mismatch(facts: NetworkFacts, m: Measures, t: PlanThresholds) -> Verdict | None:
    if m.ambition_jumps < t.ambition_jumps_to_leave or m.mandated:
        return None
    return Verdict(
        "leave",
        LeaveReason.AMBITION_MISMATCH.value,
        f"Its evaluations jumped between poor and excellent {m.ambition_jumps} times in the last "
        f"{t.window_days} days: our ambition levels do not match.",
    )


# 3b. We carry the network while the others ride along: it acts unfairly.
def check_unfair(facts: NetworkFacts, m: Measures, t: PlanThresholds) -> Verdict | None:
    if not m.unfair or m.mandated or m.effort_ratio is None:
        return None
    share = "while the members logged none"
    if not math.isinf(m.effort_ratio):
        share = f"{_number(m.effort_ratio)} times the average member's"
    return Verdict(
        "leave",
        LeaveReason.UNFAIR.value,
        f"We put in {_hours(m.effort_hours)} in the last {t.window_days} days, {share} "
        f"(over {_number(t.unfair_effort_ratio)} times is unfair): the others ride on us.",
    )


# 3c. Active on paper, yet nobody contributes any more: the collaboration has stalled.
def check_stalled(facts: NetworkFacts, m: Measures, t: PlanThresholds) -> Verdict | None:
    if not m.stalled or m.mandated:
        return None
    return Verdict(
        "leave",
        LeaveReason.STALLED.value,
        f"It is active, yet nobody has contributed for {m.quiet_days} days "
        f"({t.stall_after_days} is a stall): the collaboration has stalled.",
    )


def is_low_efficiency(m: Measures, t: PlanThresholds) -> bool:
    if m.outcome is None or m.efficiency is None:
        return False  # unevaluated effort is asked about (rule 6), not judged
    if m.effort_hours < t.min_effort_for_efficiency_hours:
        return False
    return m.efficiency < t.min_efficiency or m.outcome < t.min_adequate_outcome


# 4. Too much of our time for what it gives: leave, unless we are mandated to be there;
#    then we must stay, but should park it and spend less.
def check_low_efficiency(facts: NetworkFacts, m: Measures, t: PlanThresholds) -> Verdict | None:
    if not is_low_efficiency(m, t):
        return None
    cost = (
        f"We spent {_hours(m.effort_hours)} in the last {t.window_days} days for an outcome of "
        f"{_number(m.outcome)} ({_number(m.efficiency)} per hour)"
    )
    if NetworkPurpose.MANDATED.value in facts.purposes:
        return Verdict("park", None, f"{cost}, but it is mandated: stay and spend less.")
    return Verdict("leave", LeaveReason.LOW_EFFICIENCY.value, f"{cost}: it takes too much time for what it gives.")


# 5. Passive and dormant networks are built in advance. One that serves funding or a
#    shared goal and last proved excellent is worth activating now; the rest are kept warm.
def check_passive(facts: NetworkFacts, m: Measures, t: PlanThresholds) -> Verdict | None:
    if m.activity not in ("passive", "dormant"):
        return None
    promising = sorted(t.activation_purposes.intersection(facts.purposes))
    last = m.last_outcome
    if promising and last is not None and last >= t.activate_min_last_outcome:
        return Verdict(
            "activate",
            None,
            f"It is {m.activity}, serves {', '.join(promising)} and its last evaluation was "
            f"{_number(last)}: activate it for a specific need.",
        )
    return Verdict(
        "keep", None, f"It is {m.activity}: keep it warm at low cost so it can be activated when a need appears."
    )


# 6a. Active with its best-before date near: the task is nearly done, so wind our part
#     down. This comes before 6b because an unevaluated network nearing its end needs
#     winding down more than it needs a first evaluation.
def check_best_before_near(facts: NetworkFacts, m: Measures, t: PlanThresholds) -> Verdict | None:
    if m.best_before_status != "near" or m.best_before is None:
        return None
    return Verdict(
        "park",
        None,
        f"Its best-before date {m.best_before.isoformat()} is {m.days_to_best_before} days "
        "away: its task is nearly done, so wind our part down.",
    )


# 6b. Active, we spend time on it, but nobody evaluated it: keep, and ask for an evaluation.
def check_unevaluated_effort(facts: NetworkFacts, m: Measures, t: PlanThresholds) -> Verdict | None:
    if m.effort_hours <= 0 or m.outcome is not None:
        return None
    return Verdict(
        "keep",
        None,
        f"We spent {_hours(m.effort_hours)} in the last {t.window_days} days but it has not been "
        "evaluated: evaluate it with the outcome formula before the next plan.",
    )


# 7. Nothing argues for a change.
def check_keep(facts: NetworkFacts, m: Measures, t: PlanThresholds) -> Verdict | None:
    if m.outcome is None:
        return Verdict("keep", None, "It is active and nothing argues for a change.")
    per_hour = f", {_number(m.efficiency)} per hour" if m.efficiency is not None else ""
    return Verdict("keep", None, f"It is active and worth its effort (outcome {_number(m.outcome)}{per_hour}).")


RULES: tuple[Rule, ...] = (
    check_left,
    check_best_before_passed,
    check_ambition_mismatch,
    check_unfair,
    check_stalled,
    check_low_efficiency,
    check_passive,
    check_best_before_near,
    check_unevaluated_effort,
    check_keep,
)


def assess(facts: NetworkFacts, as_of: datetime, thresholds: PlanThresholds = THRESHOLDS) -> NetworkHealth:
    """One network's health and recommendation, seeing only what had happened by ``as_of``.

    Raises ValueError for a naive ``as_of`` or a network joined after ``as_of``.
    """
    m = measure(facts, as_of, thresholds)
    verdict = next(v for rule in RULES if (v := rule(facts, m, thresholds)) is not None)
    return NetworkHealth(
        network_id=facts.network_id,
        name=facts.name,
        purposes=tuple(sorted(facts.purposes)),
        role=facts.role,
        activity=m.activity,
        effort_hours=m.effort_hours,
        outcome=m.outcome,
        efficiency=m.efficiency,
        best_before=m.best_before,
        best_before_status=m.best_before_status,
        recommendation=verdict.recommendation,
        reason=verdict.reason,
        explanation=verdict.explanation,
        **judgements(m),
    )


def plan_key(health: NetworkHealth) -> tuple[int, str, str]:
    return PLAN_ORDER.index(health.recommendation), health.name, health.network_id


def network_plan(
    facts: Iterable[NetworkFacts], as_of: datetime, thresholds: PlanThresholds = THRESHOLDS
) -> list[NetworkHealth]:
    """Every network we had joined by ``as_of``: leave first, then activate, park, keep, left."""
    check_aware(as_of, "as_of")
    # A network joined later did not exist for us yet, so a past plan leaves it out.
    joined = (f for f in facts if f.joined_at <= as_of)
    return sorted((assess(f, as_of, thresholds) for f in joined), key=plan_key)


# Markdown ------------------------------------------------------------------------------

SECTIONS: tuple[tuple[Recommendation, str], ...] = (
    ("leave", "To leave"),
    ("activate", "To activate"),
    ("park", "To park"),
    ("keep", "To keep"),
    ("left", "Left"),
)
TABLE_HEADER = (
    "| Network | Purposes | Role | Activity | Effort h (12 m) | Outcome | Efficiency | Best before | Recommendation |"
)


# Names and free text come from whoever recorded them, and the plan is often rendered to
# HTML: `<`, `>` and `&` become entities (so `<script>` shows as text, never runs), and
# brackets are backslash-escaped so no one can plant a link or image in the plan.
_ESCAPES = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "[": "\\[", "]": "\\]"})


def _cell(text: str) -> str:
    # A pipe or a line break in a name would break the table's row.
    escaped = text.replace("\\", "\\\\").translate(_ESCAPES)
    return escaped.replace("|", "\\|").replace("\r", " ").replace("\n", " ")


def _table_row(h: NetworkHealth) -> str:
    best_before = "–"
    if h.best_before is not None:
        best_before = h.best_before.isoformat()
        if h.best_before_status in ("near", "passed"):
            best_before += f" ({h.best_before_status})"
    recommendation = h.recommendation + (f" ({h.reason})" if h.reason else "")
    cells = (
        h.name,
        ", ".join(h.purposes) or "–",
        h.role,
        h.activity,
        _number(h.effort_hours),
        _number(h.outcome),
        _number(h.efficiency),
        best_before,
        recommendation,
    )
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def _section_item(h: NetworkHealth) -> str:
    reason = f" — `{h.reason}`" if h.reason else ""
    return f"- **{_cell(h.name)}**{reason}: {_cell(h.explanation)}"


class MoreSections(Protocol):
    """Sections that follow the plan's own (``domain.network_plan_sections.PlanSections``,
    which builds on this module, so it is named here by what it does)."""

    def markdown(self) -> list[str]: ...


def plan_markdown(
    healths: Sequence[NetworkHealth],
    as_of: datetime,
    title: str = "Network plan",
    sections: MoreSections | None = None,
) -> str:
    """The plan as a Markdown document; the same healths give the same text in any order.
    ``sections`` (``domain.network_plan_sections``) adds the decisions beside the
    recommendations, the impact of leaving and the networks to join."""
    ordered = sorted(healths, key=plan_key)
    counts = ", ".join(f"{r} {sum(h.recommendation == r for h in ordered)}" for r, _ in SECTIONS)
    lines = [
        f"# {title} — as of {as_of.date().isoformat()}",
        "",
        f"**Summary:** {len(ordered)} networks — {counts}.",
        "",
        "## Networks we are in and why",
        "",
        TABLE_HEADER,
        "|" + " --- |" * 9,
    ]
    lines += [_table_row(h) for h in ordered if h.recommendation != "left"]
    for recommendation, heading in SECTIONS:
        members = [h for h in ordered if h.recommendation == recommendation]
        lines += ["", f"## {heading}", ""]
        lines += [_section_item(h) for h in members] or ["_None._"]
    if sections is not None:
        lines += sections.markdown()
    return "\n".join(lines) + "\n"
