"""Reading meetings from iCalendar (ICS) with ``icalendar``, keeping only what calendar
capture needs (services/calendar_capture.py): who of ours took part and when, and what of
the others may point to a partner (their mail domains and display names: matched on,
then dropped). No address goes further than this module.

A floating time or an all-day date (its midnight) is taken in the zone given (UTC by
default); a TZID this machine cannot resolve skips the meeting, as do no UID, no
readable start, and a recurring series (RRULE/RDATE: a series outlives its meetings, so
an occurrence is no evidence; an occurrence with its own RECURRENCE-ID counts).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import TypeAdapter, ValidationError

from contract.commands import EARLIEST, LATEST
from domain.values import MailDomain, check_storable

UNNAMED = "unnamed colleague"  # ours took part, but the calendar names none of them
MAX_PARTICIPANTS = 50  # a contact's limit: of a bigger meeting, the first 50 named
_DOMAIN: TypeAdapter[str] = TypeAdapter(MailDomain)
_NOT_PEOPLE = frozenset({"ROOM", "RESOURCE", "GROUP", "UNKNOWN"})  # CUTYPEs that are no colleague


class MalformedIcs(ValueError):
    """The file as a whole cannot be read: nothing is recorded."""


def _domain(given: str) -> str:
    try:
        return _DOMAIN.validate_python(given.strip().lower().rstrip("."))
    except ValidationError as error:
        raise ValueError(f"{given[:100]!r} is no mail domain (acme.fi, say)") from error


@dataclass(frozen=True)
class Ours:
    """What tells ours from theirs, and the zone a floating time is taken in."""

    domains: tuple[str, ...]
    zone: tzinfo = UTC

    @classmethod
    def of(cls, domains: Iterable[str], zone: str = "UTC") -> Ours:
        """ValueError: no domain, a domain that is none, or an unknown zone."""
        checked = tuple(dict.fromkeys(_domain(d) for d in domains))
        if not checked:
            raise ValueError("name at least one of our mail domains")
        try:
            return cls(checked, ZoneInfo(zone))
        except (ZoneInfoNotFoundError, ValueError, OSError) as error:  # "Europe" is a directory
            raise ValueError(f"unknown time zone {zone[:100]!r}") from error

    def has(self, domain: str | None) -> bool:
        return domain is not None and any(domain == d or domain.endswith(f".{d}") for d in self.domains)


@dataclass(frozen=True)
class Meeting:
    """What is read of a VEVENT: of it, only ``ours`` and ``start`` are ever stored."""

    uid: str
    key: str  # digest of the UID and RECURRENCE-ID: the command ids' part
    start: datetime  # UTC
    sequence: int
    cancelled: bool
    organised_by_us: bool
    ours: tuple[str, ...]  # names of ours who took part; empty: none of ours did
    their_domains: frozenset[str]  # only to find the partner by
    their_names: frozenset[str]


class Skipped(NamedTuple):
    uid: str
    start: datetime | None
    reason: str


def read_meetings(data: bytes, ours: Ours) -> tuple[list[Meeting], list[Skipped], int]:
    """The file's meetings (of one key, the highest SEQUENCE), those skipped, and how
    many VEVENTs it has. MalformedIcs: not iCalendar."""
    from icalendar import Calendar

    try:
        calendars = Calendar.from_ical(data, multiple=True)
    except Exception as error:  # icalendar raises what it likes on garbage: all mean malformed
        raise MalformedIcs(f"is not iCalendar: {str(error)[:200]}") from error
    if not calendars or any(cal.name != "VCALENDAR" for cal in calendars):
        raise MalformedIcs("holds no VCALENDAR")
    events = [(cal, event) for cal in calendars for event in cal.walk("VEVENT")]
    latest: dict[str, Meeting] = {}
    skipped: list[Skipped] = []
    for cal, event in events:
        try:
            read = _meeting(event, ours, str(cal.get("METHOD", "")).upper() == "CANCEL")
        except Exception as error:  # one unreadable event must not stop the file's others
            read = Skipped(str(event.get("UID", ""))[:1000], None, f"unreadable: {type(error).__name__}")
        if isinstance(read, Skipped):
            skipped.append(read)
        elif read.key not in latest or read.sequence >= latest[read.key].sequence:
            latest[read.key] = read
    return list(latest.values()), skipped, len(events)


def _meeting(event: Any, ours: Ours, method_cancel: bool) -> Meeting | Skipped:
    uid = str(event.get("UID", "")).strip()[:1000]
    start = _moment(event.get("DTSTART"), ours.zone)
    if not uid:
        return Skipped(uid, None if isinstance(start, str) else start, "no UID to know it by")
    if isinstance(start, str):
        return Skipped(uid, None, start)
    if "RRULE" in event or "RDATE" in event:
        return Skipped(uid, start, "recurring series: its occurrences are not taken as meetings")
    recurrence = _moment(event["RECURRENCE-ID"], ours.zone) if "RECURRENCE-ID" in event else None
    if isinstance(recurrence, str):
        return Skipped(uid, start, f"RECURRENCE-ID: {recurrence}")
    mine: list[str | None] = []
    theirs: list[tuple[str | None, str | None]] = []
    organised = False
    for person in _people(event):
        if person.declined:
            continue
        if not ours.has(person.domain):
            theirs.append((person.domain, person.name))
        elif person.individual:
            mine.append(person.name)
            organised |= person.organiser
    named = tuple(dict.fromkeys(n for n in mine if n))[:MAX_PARTICIPANTS]
    key = uid if recurrence is None else f"{uid}\n{recurrence.isoformat()}"
    try:
        sequence = int(event.get("SEQUENCE", 0))
    except (TypeError, ValueError):
        sequence = 0
    return Meeting(
        uid=uid,
        key=hashlib.sha256(key.encode("utf-8", "backslashreplace")).hexdigest()[:32],
        start=start,
        sequence=sequence,
        cancelled=method_cancel or str(event.get("STATUS", "")).upper() == "CANCELLED",
        organised_by_us=organised,
        ours=named or ((UNNAMED,) if mine else ()),
        their_domains=frozenset(d for d, _ in theirs if d),
        their_names=frozenset(n for _, n in theirs if n),
    )


def _moment(prop: Any, zone: tzinfo) -> datetime | str:
    """A DTSTART (or RECURRENCE-ID) in UTC, or why it cannot be had."""
    try:
        value = getattr(prop, "dt", None)
    except Exception:  # icalendar's BrokenCalendarProperty (and kin): the value did not parse
        return "no readable start time"
    if isinstance(value, datetime) and value.tzinfo is None and "TZID" in getattr(prop, "params", {}):
        return f"unknown time zone {str(prop.params['TZID'])[:100]!r}"
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=zone)
    elif isinstance(value, date):  # all day: from its midnight
        moment = datetime.combine(value, time(), zone)
    else:
        return "no readable start time"
    try:
        moment = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        return "start time out of range"
    return moment if EARLIEST <= moment <= LATEST else "start time out of range"


# Of the organiser or an attendee; the address itself goes no further than _people.
class _Person(NamedTuple):
    domain: str | None
    name: str | None
    organiser: bool
    declined: bool
    individual: bool


def _people(event: Any) -> list[_Person]:
    """The organiser and each attendee, once per address (the organiser is often an
    attendee too)."""
    found: dict[str, _Person] = {}
    attendees = event.get("ATTENDEE", [])
    listed = [(event["ORGANIZER"], True)] if "ORGANIZER" in event else []
    listed += [(a, False) for a in (attendees if isinstance(attendees, list) else [attendees])]
    for number, (address, organiser) in enumerate(listed):
        params = getattr(address, "params", {})
        text = str(address).strip()
        mail = text[7:].lower() if text.lower().startswith("mailto:") else ""
        who = mail or f"#{number}"
        held = found.get(who)
        found[who] = _Person(
            domain=mail.rpartition("@")[2].strip().rstrip(".") if "@" in mail else None,
            name=_name(params.get("CN")) or (held.name if held else None),
            organiser=organiser or (held is not None and held.organiser),
            declined=str(params.get("PARTSTAT", "")).upper() == "DECLINED",
            individual=str(params.get("CUTYPE", "INDIVIDUAL")).upper() not in _NOT_PEOPLE,
        )
    return list(found.values())


def _name(cn: Any) -> str | None:
    """A display name fit to keep: not an address, not empty, storable, not over-long."""
    name = " ".join(str(cn or "").split())
    if not name or "@" in name or len(name) > 200:
        return None
    try:
        return check_storable(name)
    except ValueError:
        return None
