"""Attention this week: what a steward should do, ranked, each with its reason and evidence.

Pure rules over what the lifecycle board knows of one partnership as of a moment (its
facts, its flags with their evidence, its segment cell, its evaluations and the criteria
catalogue in force, how often it was segmented); no clock: ``as_of`` is "now". Each item
has a due date; one past it is overdue. A dated rule lists its item from ``horizon_days``
before it falls due ("this week"); an item raised by a lifecycle flag is listed while the
flag stands. Evidence is event ids (``<aggregate id>:<version>``), as the flags give them.

Thresholds (``AttentionThresholds``), and why:

* contact: the last contact (or the opening) plus the cell's cadence, the promise the
  ``under_served`` flag checks: an overdue contact is an under-served partnership.
* evaluation: a first within 90 days of opening (a quarter shows how a start goes); then
  yearly (outcomes are judged over 365 days); and within 90 days of a new catalogue, for
  partners last scored under another (or none), so outcomes stay comparable.
* segmentation: within 30 days of opening (until then the default cell judges it); a
  first guess (the only segmentation, made in those 30 days) is looked at again 180 days
  after it was made, when the partner is known better.
* handover: the new steward meets the partner within 30 days of the old one leaving.
* wind-down: ended (or taken up again) within 90 days; a ``wind_down_candidate`` flag
  asks for the decision now (due as of the question).

Ranking: overdue items before the rest; then by kind, in ``KIND_ORDER``; then the earliest
due; then by partner name and id, so the order is total. The kinds, first to last:

1. handover_pending: nobody who knows the partner is in touch; a partnership cannot be
   bequeathed, and each week without the new steward's first contact loses more of it.
2. dormant_worth_waking: its contact is overdue too, but trust was built and is decaying:
   one call here recovers the most.
3. contact_due: the cell's promise of contact; trust decays with silence.
4. segmentation_missing: every other rule (cadence, budget, mode) judges the partnership by
   the default cell until it is placed, and placing it takes minutes.
5. wind_down_decision_pending: effort may be going where it does not pay; a decision, not
   a relationship, waits.
6. evaluation_due: keeps outcomes comparable; a week's delay loses little.
7. segmentation_first_guess: it has a place, only an early one to confirm.

An item that asks for contact (handover, dormant) stands for the contact too: no
contact_due item repeats it. A partnership in wind-down asks only for its handover and its
ending; an ended one, for nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, get_args

from domain.lifecycle import Flag, FlagName, PartnershipFacts
from domain.operating_model import CellPolicy
from domain.organisation import ORGANISATION_ID
from domain.values import Stage

# The kinds, in ranking order (see above).
Kind = Literal[
    "handover_pending",
    "dormant_worth_waking",
    "contact_due",
    "segmentation_missing",
    "wind_down_decision_pending",
    "evaluation_due",
    "segmentation_first_guess",
]
KIND_ORDER: tuple[Kind, ...] = get_args(Kind)


@dataclass(frozen=True)
class AttentionThresholds:
    horizon_days: int = 7  # "this week": a dated item is listed from a week before it is due
    first_evaluation_days: int = 90  # a new partnership is evaluated within a quarter
    evaluation_valid_days: int = 365  # ...and then once a year
    catalogue_grace_days: int = 90  # ...and within a quarter of a new catalogue
    segment_within_days: int = 30  # segmented within a month of opening
    first_guess_days: int = 30  # a segmentation this early is a first guess...
    first_guess_revisit_days: int = 180  # ...looked at again half a year after it was made
    handover_days: int = 30  # the new steward meets the partner within a month
    wind_down_days: int = 90  # a wind-down ends within a quarter


THRESHOLDS = AttentionThresholds()


@dataclass(frozen=True)
class LastEvaluation:
    at: datetime
    version: int
    catalogue_version: int | None  # the catalogue it scored; None: before any existed


@dataclass(frozen=True)
class Catalogue:
    """The organisation's criteria catalogue in force: its event's version and date."""

    version: int
    effective: datetime


@dataclass(frozen=True)
class AttentionFacts:
    """One partnership as the board sees it as of a moment, and what attention reads besides."""

    facts: PartnershipFacts
    flags: tuple[Flag, ...]
    cell: CellPolicy  # its segment cell's policy (the default one until it is segmented)
    segmentations: int = 0  # segmentations in force by then
    last_evaluation: LastEvaluation | None = None
    catalogue: Catalogue | None = None  # the catalogue in force by then, if any


@dataclass(frozen=True)
class AttentionItem:
    partnership_id: str
    partner_name: str
    kind: Kind
    reason: str
    due: date
    overdue: bool
    evidence: tuple[str, ...]
    priority: int = 0  # its place in the ranked list, 1 first; 0 until ranked

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "due": self.due.isoformat(), "evidence": list(self.evidence)}


def _day(moment: datetime) -> str:
    return moment.astimezone(UTC).date().isoformat()


def _when(due_at: datetime, as_of: datetime) -> str:
    return f"overdue since {_day(due_at)}" if due_at < as_of else f"due {_day(due_at)}"


def _ids(pid: str, *versions: int) -> tuple[str, ...]:
    return tuple(f"{pid}:{v}" for v in versions if v)  # 0: no such event


def _item(
    a: AttentionFacts, kind: Kind, due_at: datetime, as_of: datetime, reason: str, evidence: tuple[str, ...]
) -> AttentionItem:
    f = a.facts
    due = due_at.astimezone(UTC).date()
    return AttentionItem(f.partnership_id, f.partner_name, kind, reason, due, due_at < as_of, evidence)


def _soon(due_at: datetime, as_of: datetime, t: AttentionThresholds) -> bool:
    return due_at <= as_of + timedelta(days=t.horizon_days)


def _flag(a: AttentionFacts, name: FlagName) -> Flag | None:
    return next((flag for flag in a.flags if flag.name == name), None)


def _cell(a: AttentionFacts) -> str:
    f = a.facts
    if f.segment_now is None or f.segment_future is None:
        return "not yet segmented, the default cell"
    return f"its cell {f.segment_now.value}/{f.segment_future.value}"


def _quiet_since(a: AttentionFacts) -> tuple[datetime, datetime, tuple[str, ...]]:
    """Since when it is quiet, when contact is due, and the event it is quiet since."""
    f = a.facts
    since = f.last_contact_at or f.opened_at
    evidence = _ids(f.partnership_id, f.last_contact_version) if f.last_contact_at else _ids(f.partnership_id, 1)
    return since, since + timedelta(days=a.cell.cadence_days), evidence


def handover_pending(a: AttentionFacts, as_of: datetime, t: AttentionThresholds) -> AttentionItem | None:
    flag, left = _flag(a, "needs_handover"), a.facts.steward_left_at
    if flag is None or left is None:
        return None
    due_at = left + timedelta(days=t.handover_days)
    reason = (
        f"Handover {_when(due_at, as_of)}: {flag.reasons[0]}; "
        f"the new steward meets the partner within {t.handover_days} days."
    )
    return _item(a, "handover_pending", due_at, as_of, reason, flag.evidence)


def dormant_worth_waking(a: AttentionFacts, as_of: datetime, t: AttentionThresholds) -> AttentionItem | None:
    flag = _flag(a, "dormant_but_trusted")
    if flag is None:
        return None
    _, due_at, _ = _quiet_since(a)
    reason = f"Worth waking, contact {_when(due_at, as_of)}: {flag.reasons[0]}."
    return _item(a, "dormant_worth_waking", due_at, as_of, reason, flag.evidence)


def contact_due(a: AttentionFacts, as_of: datetime, t: AttentionThresholds) -> AttentionItem | None:
    f = a.facts
    since, due_at, evidence = _quiet_since(a)
    if not _soon(due_at, as_of, t):
        return None
    last = f"last contact on {_day(since)}" if f.last_contact_at else f"no contact since opening on {_day(since)}"
    reason = f"Contact {_when(due_at, as_of)}: {last}; {_cell(a)} expects contact every {a.cell.cadence_days} days."
    return _item(a, "contact_due", due_at, as_of, reason, evidence)


def segmentation(a: AttentionFacts, as_of: datetime, t: AttentionThresholds) -> AttentionItem | None:
    """Missing, or only a first guess made long ago."""
    f = a.facts
    if f.segment_now is None:
        due_at = f.opened_at + timedelta(days=t.segment_within_days)
        if not _soon(due_at, as_of, t):
            return None
        reason = (
            f"Segmentation {_when(due_at, as_of)}: not segmented since opening on {_day(f.opened_at)}; "
            f"until it is, the default cell (contact every {a.cell.cadence_days} days) judges it."
        )
        return _item(a, "segmentation_missing", due_at, as_of, reason, _ids(f.partnership_id, 1))
    at = f.segment_at
    if a.segmentations != 1 or at is None or at - f.opened_at > timedelta(days=t.first_guess_days):
        return None
    due_at = at + timedelta(days=t.first_guess_revisit_days)
    if not _soon(due_at, as_of, t):
        return None
    reason = (
        f"Second look at the segmentation {_when(due_at, as_of)}: {_cell(a)} was placed on {_day(at)}, "
        f"within {t.first_guess_days} days of opening, and never revisited."
    )
    return _item(a, "segmentation_first_guess", due_at, as_of, reason, _ids(f.partnership_id, f.segment_version))


def wind_down_decision(a: AttentionFacts, as_of: datetime, t: AttentionThresholds) -> AttentionItem | None:
    f = a.facts
    if f.stage == Stage.WIND_DOWN:
        due_at = f.stage_since + timedelta(days=t.wind_down_days)
        if not _soon(due_at, as_of, t):
            return None
        reason = (
            f"Wind-down decision {_when(due_at, as_of)}: winding down since {_day(f.stage_since)} and not ended; "
            f"end it, or take it up again, within {t.wind_down_days} days."
        )
        return _item(a, "wind_down_decision_pending", due_at, as_of, reason, _ids(f.partnership_id, f.stage_version))
    flag = _flag(a, "wind_down_candidate")
    if flag is None:
        return None
    reason = f"Decide whether to wind it down: {'; '.join(flag.reasons)}."
    return _item(a, "wind_down_decision_pending", as_of, as_of, reason, flag.evidence)


def evaluation_due(a: AttentionFacts, as_of: datetime, t: AttentionThresholds) -> AttentionItem | None:
    f, last, catalogue = a.facts, a.last_evaluation, a.catalogue
    pid = f.partnership_id
    grounds: list[tuple[datetime, str, tuple[str, ...]]] = []
    if last is None:
        due_at = f.opened_at + timedelta(days=t.first_evaluation_days)
        why = f"never evaluated since opening on {_day(f.opened_at)} (first within {t.first_evaluation_days} days)"
        grounds.append((due_at, why, _ids(pid, 1)))
    else:
        due_at = last.at + timedelta(days=t.evaluation_valid_days)
        why = f"last evaluated on {_day(last.at)} (one a year)"
        grounds.append((due_at, why, _ids(pid, last.version)))
        if catalogue is not None and last.catalogue_version != catalogue.version:
            due_at = catalogue.effective + timedelta(days=t.catalogue_grace_days)
            scored = "no catalogue" if last.catalogue_version is None else f"catalogue {last.catalogue_version}"
            why = (
                f"last scored under {scored}, not catalogue {catalogue.version} in force since "
                f"{_day(catalogue.effective)} (re-evaluate within {t.catalogue_grace_days} days)"
            )
            grounds.append((due_at, why, (*_ids(pid, last.version), f"{ORGANISATION_ID}:{catalogue.version}")))
    soon = [ground for ground in grounds if _soon(ground[0], as_of, t)]
    if not soon:
        return None
    due_at = min(ground[0] for ground in soon)
    reason = f"Evaluation {_when(due_at, as_of)}: {'; '.join(ground[1] for ground in soon)}."
    evidence = tuple(dict.fromkeys(event for ground in soon for event in ground[2]))
    return _item(a, "evaluation_due", due_at, as_of, reason, evidence)


def needs(a: AttentionFacts, as_of: datetime, t: AttentionThresholds = THRESHOLDS) -> list[AttentionItem]:
    """What one partnership asks of its steward as of a moment (unranked)."""
    stage = a.facts.stage
    if stage == Stage.ENDED:
        return []
    found = [handover_pending(a, as_of, t), wind_down_decision(a, as_of, t)]
    if stage != Stage.WIND_DOWN:  # decided: only its handover and its ending are asked for
        found += [dormant_worth_waking(a, as_of, t), segmentation(a, as_of, t), evaluation_due(a, as_of, t)]
        if not any(item is not None and item.kind in ("handover_pending", "dormant_worth_waking") for item in found):
            found.append(contact_due(a, as_of, t))
    return [item for item in found if item is not None]


def ranked(items: Iterable[AttentionItem]) -> list[AttentionItem]:
    """Overdue first, then by kind (``KIND_ORDER``), then the earliest due, each numbered."""
    order = sorted(
        items,
        key=lambda i: (not i.overdue, KIND_ORDER.index(i.kind), i.due, i.partner_name, i.partnership_id),
    )
    return [replace(item, priority=n) for n, item in enumerate(order, start=1)]


def attention(
    partnerships: Iterable[AttentionFacts], as_of: datetime, t: AttentionThresholds = THRESHOLDS
) -> list[AttentionItem]:
    """The ranked attention list of a steward's partnerships as of a moment."""
    return ranked(item for a in partnerships for item in needs(a, as_of, t))
