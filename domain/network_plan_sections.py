"""The network plan's decision sections: what we decided beside what the rules recommend,
what leaving would cost, and which candidate networks to join first.

``domain.network_plan`` recommends; the organisation decides (``plan_decided``), and may
override the recommendation. A decision is in force for its network from its
``occurred_at`` until the next one, so a plan as of a past date shows the decisions of
that time. Candidates are ranked by ``domain.network_candidates``. Pure and
deterministic, like the rest of the plan: time comes only from the facts and ``as_of``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from domain.network_candidates import CandidateScore, EntryRequirements, purpose_gaps, ranked, score
from domain.network_health import THRESHOLDS, NetworkHealth
from domain.network_plan import _cell, _number, plan_key
from domain.timeline import check_aware

# Decisions for a network we are in; ``join`` is for candidates only.
NETWORK_DECISIONS = frozenset({"keep", "activate", "park", "leave"})
LeaveBasis = Literal["recommended", "decided", "recommended and decided"]


@dataclass(frozen=True)
class Candidate:
    """A candidate network as considered (one ``network_considered``)."""

    candidate_id: str
    name: str
    purposes: tuple[str, ...]
    requirements: EntryRequirements
    note: str | None
    considered_at: datetime  # from when this consideration applies
    version: int  # the organisation's version that recorded it


@dataclass(frozen=True)
class Decision:
    """One ``plan_decided``: for a network (or candidate), from ``decided_at`` on."""

    network_id: str
    decision: str
    rationale: str
    decider: str
    actor: str  # who sent it
    decided_at: datetime
    version: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "rationale": self.rationale,
            "decider": self.decider,
            "actor": self.actor,
            "decided_at": self.decided_at.isoformat(),
            "version": self.version,
        }


def in_force(items: Iterable[Any], key: str, moment: str, as_of: datetime) -> dict[str, Any]:
    """Per ``key`` (an id), the item in force at ``as_of``: the latest by (``moment``,
    version) at or before it; of two at one moment, the later recorded."""
    check_aware(as_of, "as_of")
    latest: dict[str, Any] = {}
    for item in items:
        at, held = getattr(item, moment), latest.get(getattr(item, key))
        if at <= as_of and (held is None or (at, item.version) > (getattr(held, moment), held.version)):
            latest[getattr(item, key)] = item
    return latest


@dataclass(frozen=True)
class Course:
    """One network's recommendation and the decision in force beside it."""

    health: NetworkHealth
    decision: Decision | None

    @property
    def course(self) -> str:
        """What we go by: a left network is left; else the decision, else the recommendation."""
        if self.health.recommendation == "left":
            return "left"
        if self.decision is not None and self.decision.decision in NETWORK_DECISIONS:
            return self.decision.decision
        return self.health.recommendation

    @property
    def overrides(self) -> bool:
        # A decision on a network we have left since is history, not an override; a
        # "join" on a network joined under the candidate's id was carried out.
        return self.course != self.health.recommendation

    def fields(self) -> dict[str, Any]:
        """What the JSON plan adds to the network's health: the decision beside it."""
        decision = self.decision.to_dict() if self.decision else None
        return {"decision": decision, "course": self.course, "overrides": self.overrides}


@dataclass(frozen=True)
class LeavingImpact:
    network_id: str
    name: str
    basis: LeaveBasis
    sole_members: tuple[tuple[str, str | None], ...]  # (partnership id, partner name)
    effort_hours: float  # ours in the plan's window (last 12 months): what leaving frees


@dataclass(frozen=True)
class ToJoin:
    candidate: Candidate
    score: CandidateScore
    decision: Decision | None


@dataclass(frozen=True)
class PlanSections:
    as_of: datetime
    courses: tuple[Course, ...]
    leaving: tuple[LeavingImpact, ...]
    to_join: tuple[ToJoin, ...]
    window_days: int

    def network_fields(self, network_id: str) -> dict[str, Any]:
        return next(c.fields() for c in self.courses if c.health.network_id == network_id)

    def to_dict(self) -> dict[str, Any]:
        """The JSON plan: each network's health with its decision, then the new sections."""
        return {
            "networks": [{**c.health.to_dict(), **c.fields()} for c in self.courses],
            "to_join": [_join_dict(rank, j) for rank, j in enumerate(self.to_join, 1)],
            "leaving_impact": [_leaving_dict(i, self.window_days) for i in self.leaving],
        }

    def markdown(self) -> list[str]:
        lines = ["", "## Recommendation and decision", ""]
        lines += [DECISION_HEADER, "|" + " --- |" * 6] if self.courses else ["_None._"]
        lines += [_course_row(c) for c in self.courses]
        lines += ["", "## Impact of leaving", ""]
        lines += [_leaving_item(i, self.window_days) for i in self.leaving] or ["_None._"]
        lines += ["", "## To join", ""]
        if self.to_join:
            lines += [RANKING, "", JOIN_HEADER, "|" + " --- |" * 9]
        lines += [_join_row(rank, j) for rank, j in enumerate(self.to_join, 1)] or ["_None._"]
        return lines


def plan_sections(
    healths: Sequence[NetworkHealth],
    candidates: Iterable[Candidate],
    decisions: Iterable[Decision],
    members: Mapping[str, Iterable[str]],
    as_of: datetime,
    partner_names: Mapping[str, str] | None = None,
    window_days: int = THRESHOLDS.window_days,
) -> PlanSections:
    """The sections for ``healths`` (``network_plan`` as of ``as_of``), with the candidates
    and decisions in force at ``as_of`` and each network's member partnerships."""
    in_force_decisions = in_force(decisions, "network_id", "decided_at", as_of)
    courses = tuple(Course(h, in_force_decisions.get(h.network_id)) for h in sorted(healths, key=plan_key))
    gaps = purpose_gaps((c.health.purposes, c.course) for c in courses)
    networks = {c.health.network_id for c in courses}  # joined by as_of: no longer candidates
    considered = in_force(candidates, "candidate_id", "considered_at", as_of).values()
    scores = {
        c.candidate_id: score(c.candidate_id, c.name, c.purposes, c.requirements, gaps)
        for c in considered
        if c.candidate_id not in networks
    }
    by_id = {c.candidate_id: c for c in considered}
    to_join = tuple(
        ToJoin(by_id[s.candidate_id], s, in_force_decisions.get(s.candidate_id)) for s in ranked(scores.values())
    )
    leaving = tuple(
        _impact(c, basis, courses, members, partner_names or {}) for c in courses if (basis := _leave_basis(c))
    )
    return PlanSections(as_of, courses, leaving, to_join, window_days)


def _leave_basis(c: Course) -> LeaveBasis | None:
    recommended = c.health.recommendation == "leave"
    # Decided: a decision in force says so (not only the rules), for a network not yet left.
    decided = c.course == "leave" and c.decision is not None and c.decision.decision == "leave"
    if recommended and decided:
        return "recommended and decided"
    return "recommended" if recommended else "decided" if decided else None


def _impact(
    c: Course,
    basis: LeaveBasis,
    courses: Sequence[Course],
    members: Mapping[str, Iterable[str]],
    names: Mapping[str, str],
) -> LeavingImpact:
    # "Shared" networks are those we are still in: a network we have left shares nothing.
    others: set[str] = set()
    for other in courses:
        if other.health.network_id != c.health.network_id and other.health.recommendation != "left":
            others.update(members.get(other.health.network_id, ()))
    sole = sorted(
        ((pid, names.get(pid)) for pid in set(members.get(c.health.network_id, ())) if pid not in others),
        key=lambda m: ((m[1] or "").casefold(), m[0]),
    )
    return LeavingImpact(c.health.network_id, c.health.name, basis, tuple(sole), c.health.effort_hours)


# Markdown and JSON ----------------------------------------------------------------------

DECISION_HEADER = "| Network | Recommendation | Decision | Decided by | Rationale | Decided on |"
JOIN_HEADER = "| Rank | Candidate | Purposes | Purpose fit | Readiness | Priority | Missing | Partly met | Decision |"
RANKING = (
    "_Ranked by priority = purpose fit × readiness. Purpose fit adds, per purpose, 1 if no network "
    "we keep or activate serves it (none does, or only ones we leave) and 0.5 if only one we park "
    "does; readiness averages the five entry requirements (met 1, partly met 0.5, missing 0)._"
)


def _course_row(c: Course) -> str:
    h, d = c.health, c.decision
    recommendation = h.recommendation + (f" ({h.reason})" if h.reason else "")
    if d is None:
        cells = (h.name, recommendation, "–", "–", "–", "–")
    else:
        decision = d.decision + (" (overrides)" if c.overrides else "")
        cells = (h.name, recommendation, decision, d.decider, d.rationale, d.decided_at.date().isoformat())
    return "| " + " | ".join(_cell(x) for x in cells) + " |"


def _leaving_item(i: LeavingImpact, window_days: int) -> str:
    frees = f"frees {_number(i.effort_hours)} h of our effort a year (the last {window_days} days)"
    if not i.sole_members:
        shared = "no partnership shares only this network with us"
    else:
        named = ", ".join(_cell(name or pid) for pid, name in i.sole_members)
        shared = f"the only network we share with {len(i.sole_members)} partnerships: {named}"
    return f"- **{_cell(i.name)}** ({i.basis}): {frees}; {shared}."


def _join_row(rank: int, j: ToJoin) -> str:
    s, d = j.score, j.decision
    decision = f"{d.decision} ({d.decider}, {d.decided_at.date().isoformat()})" if d else "–"
    cells = (
        str(rank),
        s.name,
        ", ".join(j.candidate.purposes),
        _number(s.purpose_fit),
        _number(s.readiness),
        _number(s.priority),
        ", ".join(s.missing) or "–",
        ", ".join(s.partly_met) or "–",
        decision,
    )
    return "| " + " | ".join(_cell(x) for x in cells) + " |"


def _join_dict(rank: int, j: ToJoin) -> dict[str, Any]:
    c, s = j.candidate, j.score
    return {
        "rank": rank,
        "candidate_id": c.candidate_id,
        "name": c.name,
        "purposes": list(c.purposes),
        "requirements": c.requirements.model_dump(mode="json"),
        "note": c.note,
        "considered_at": c.considered_at.isoformat(),
        "version": c.version,
        "purpose_fit": s.purpose_fit,
        "readiness": s.readiness,
        "priority": s.priority,
        "missing": list(s.missing),
        "partly_met": list(s.partly_met),
        "decision": j.decision.to_dict() if j.decision else None,
    }


def _leaving_dict(i: LeavingImpact, window_days: int) -> dict[str, Any]:
    return {
        "network_id": i.network_id,
        "name": i.name,
        "basis": i.basis,
        "effort_hours": i.effort_hours,
        "window_days": window_days,
        "sole_members": [{"partnership_id": pid, "partner_name": name} for pid, name in i.sole_members],
    }
