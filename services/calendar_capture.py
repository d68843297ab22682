"""Calendar capture: a meeting with a known partner becomes a contact, and little else is
kept (`verkosto import calendar`, `POST /v1/imports/calendar`).

A meeting (services/calendar_ics.py reads them) counts when one of ours took part (the
organiser, or an attendee not declining: a person with an address in one of our mail
domains or below one) and someone else there points to an open partnership
(projections/queries/calendar_match.py: a domain the partner named, or a display name
that is exactly the partner's name). On each it becomes a ``contact_logged``: channel
meeting, outbound if one of ours organised it (else inbound), participants the display
names (CN) of ours ("unnamed colleague" if none has one), at DTSTART.

Nothing else is kept: no address (ours or theirs), none of their names, no title,
description, location or attachment, and nothing of meetings no partner is known in; a
CN that is an address is no name; the UID only as a digest in the command id (UIDs
often hold an address: "…@acme.fi").

``ics:<partnership id>:<digest of UID and RECURRENCE-ID>`` records a meeting once.
Recorded, it is corrected when its DTSTART moved (``…:moved:<start>``: each move once; a
correction to the time it has answers nothing_changed, counted unchanged) and retracted
when cancelled (STATUS CANCELLED or METHOD CANCEL; ``…:cancelled``). A meeting not yet
happened is skipped: a contact is reported once it has (one recorded and moved into the
future waits too). A contact retracted in Verkosto is not brought back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple
from uuid import UUID

from contract import commands as c
from services.application import Accepted, Outcome, Request, Verkosto
from services.calendar_ics import MalformedIcs, Meeting, Ours, Skipped, read_meetings

__all__ = ["MalformedIcs", "Ours", "Refused", "Report", "Skipped", "capture", "matcher_in"]
NOT_YET = "not yet happened"
MOVED, CANCELLED = "calendar: meeting moved", "calendar: meeting cancelled"
BATCH = 500


class Refused(NamedTuple):
    uid: str
    partnership_id: UUID
    code: str
    message: str


@dataclass
class Report:
    """Counts of contacts (a meeting with two partners is two), but ``meetings`` (VEVENTs
    read) and ``unmatched`` (meetings of ours no open partnership is known in)."""

    dry_run: bool
    meetings: int = 0
    recorded: int = 0  # in a dry run: would be
    moved: int = 0
    cancelled: int = 0  # in a dry run: would be
    unchanged: int = 0
    already_recorded: int = 0  # in a dry run: whether they moved is found when recording
    unmatched: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    refused: list[Refused] = field(default_factory=list)


# (domains, names) of theirs per meeting -> the open partnerships each points to.
Match = Callable[[Sequence[tuple[Iterable[str], Iterable[str]]]], list[list[UUID]]]


def capture(app: Verkosto, data: bytes, ours: Ours, actor: str, match: Match, *, dry_run: bool = False) -> Report:
    """Reads the file and (unless ``dry_run``) records its meetings with partners.
    MalformedIcs: nothing done; LookupError from ``match``: no directory to match on."""
    meetings, skipped, count = read_meetings(data, ours)
    report = Report(dry_run, meetings=count, skipped=skipped)
    mine = [m for m in meetings if m.ours or _skip(report, m, "none of ours took part")]
    matched = list(zip(mine, match([(m.their_domains, m.their_names) for m in mine]) if mine else [], strict=True))
    report.unmatched = sum(1 for _, pids in matched if not pids)
    ids = [_key(pid, m) for m, pids in matched for pid in pids]
    known = {k: v for n in range(0, len(ids), 5_000) for k, v in app.find_commands(ids[n : n + 5_000]).items()}
    now = app.clock()
    plans: list[tuple[str, Meeting, UUID, c.Command]] = []
    for meeting, pids in matched:
        recorded = [(pid, known[_key(pid, meeting)]) for pid in pids if _key(pid, meeting) in known]
        if meeting.cancelled:
            plans += [("cancelled", meeting, pid, _command("cancelled", pid, meeting, was)) for pid, was in recorded]
            if pids and not recorded:
                _skip(report, meeting, "cancelled before it was recorded")
        elif pids and meeting.start > now:
            _skip(report, meeting, NOT_YET)
        else:
            plans += [("moved", meeting, pid, _command("moved", pid, meeting, was)) for pid, was in recorded]
            fresh = [pid for pid in pids if _key(pid, meeting) not in known]
            plans += [("recorded", meeting, pid, _command("recorded", pid, meeting)) for pid in fresh]
    if dry_run:
        for kind, *_ in plans:
            _add(report, "already_recorded" if kind == "moved" else kind)
        return report
    for start in range(0, len(plans), BATCH):
        batch = plans[start : start + BATCH]
        outcomes = app.execute([Request(command, actor, "api") for *_, command in batch])
        for (kind, meeting, pid, _), outcome in zip(batch, outcomes, strict=True):
            _count(report, kind, meeting, pid, outcome)
    return report


def _skip(report: Report, meeting: Meeting, reason: str) -> bool:
    report.skipped.append(Skipped(meeting.uid, meeting.start, reason))
    return False


def _add(report: Report, count: str) -> None:
    setattr(report, count, getattr(report, count) + 1)


def _count(report: Report, kind: str, meeting: Meeting, pid: UUID, outcome: Outcome) -> None:
    if isinstance(outcome, Accepted):
        _add(report, "unchanged" if outcome.duplicate else kind)  # a duplicate: this very step, before
    elif outcome.code == "nothing_changed" or (kind == "cancelled" and outcome.code == "already_retracted"):
        report.unchanged += 1  # still at the time recorded; or retracted already
    elif outcome.code == "already_retracted":
        _skip(report, meeting, "retracted in Verkosto: the calendar does not bring it back")
    else:
        report.refused.append(Refused(meeting.uid, pid, outcome.code, outcome.message))


def _key(pid: UUID, meeting: Meeting) -> str:
    return f"ics:{pid}:{meeting.key}"


def _command(kind: str, pid: UUID, meeting: Meeting, was: Accepted | None = None) -> c.Command:
    """What ``kind`` of plan sends: a contact, or a correction or retraction of ``was``."""
    key = _key(pid, meeting)
    if was is None:
        direction = "outbound" if meeting.organised_by_us else "inbound"
        return c.model("LogContact").model_validate(
            {"type": "contact_logged", "partnership_id": pid, "command_id": key, "occurred_at": meeting.start,
             "channel": "meeting", "direction": direction, "participants": meeting.ours}
        )  # fmt: skip
    event_id = f"{was.aggregate_id}:{was.version}"
    if kind == "moved":
        return c.model("CorrectEvent").model_validate(
            {"type": "event_corrected", "partnership_id": pid, "command_id": f"{key}:moved:{meeting.start.isoformat()}",
             "event_id": event_id, "changes": {"occurred_at": meeting.start}, "reason": MOVED}
        )  # fmt: skip
    return c.model("RetractEvent").model_validate(
        {"type": "event_retracted", "partnership_id": pid, "command_id": f"{key}:cancelled", "event_id": event_id,
         "reason": CANCELLED}
    )  # fmt: skip


def matcher_in(conn: Any, schema: str) -> Match:
    """Matching on the directory read model (a moment behind the writes)."""
    from projections.queries.calendar_match import partners_for_meetings

    return lambda meetings: partners_for_meetings(conn, schema, meetings)
