"""Calendar capture (services/calendar_ics.py, services/calendar_capture.py): reading ICS,
telling ours from theirs, what is kept and what is dropped, and recording on the real
application over the in-memory recorder (tests/unit/fakes.py), the directory match
faked by the partners' domains and names."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

import pytest

from contract import commands as c
from domain.names import normalise
from domain.partnership import Partnership
from projections.queries.calendar_match import parent_domains
from services.application import Request, Verkosto
from services.calendar_capture import NOT_YET, Ours, Report, capture
from services.calendar_ics import UNNAMED, MalformedIcs, read_meetings
from tests.unit.fakes import memory_app

NOW = datetime(2025, 6, 2, 12, tzinfo=UTC)
OURS = Ours.of(["vtt.fi"])
ACME, GLOBEX = uuid.UUID(int=1), uuid.UUID(int=2)
# What the directory knows: partner domains and normalised names.
PARTNERS = {ACME: ({"acme.fi"}, "acme oy"), GLOBEX: ({"globex.com"}, "globex corporation")}
# Text of the invitations that must not be kept anywhere.
SECRETS = ("Pricing of the secret project", "Dial-in 555 123", "Room Kallio", "anna.virtanen", "bob", "acme.fi")


def event(
    uid: str = "m-1@acme.fi",
    start: str = "20250510T090000Z",
    *,
    organiser: str = 'ORGANIZER;CN="Anna Virtanen":mailto:anna.virtanen@vtt.fi',
    attendees: Sequence[str] = (
        "ATTENDEE;CN=Anna Virtanen;PARTSTAT=ACCEPTED:mailto:anna.virtanen@vtt.fi",
        "ATTENDEE;CN=Bob Builder;PARTSTAT=ACCEPTED:mailto:bob@mail.acme.fi",
    ),
    extra: Sequence[str] = (),
) -> str:
    lines = [
        "BEGIN:VEVENT",
        f"UID:{uid}",
        f"DTSTART{'' if ':' in start or ';' in start else ':'}{start}",
        "SUMMARY:Pricing of the secret project",
        "DESCRIPTION:Dial-in 555 123",
        "LOCATION:Room Kallio",
        *([organiser] if organiser else []),
        *attendees,
        *extra,
        "END:VEVENT",
    ]
    return "\r\n".join(lines)


def ics(*events: str, method: str = "REQUEST") -> bytes:
    head = ["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//EN", f"METHOD:{method}"]
    return "\r\n".join([*head, *events, "END:VCALENDAR", ""]).encode()


def match(meetings: Sequence[tuple[Iterable[str], Iterable[str]]]) -> list[list[uuid.UUID]]:
    found = []
    for domains, names in meetings:
        wanted = {d for domain in domains for d in parent_domains(domain)}
        keys = {normalise(n) for n in names}
        found.append([pid for pid, (ds, key) in PARTNERS.items() if wanted & ds or key in keys])
    return found


@pytest.fixture
def app() -> Verkosto:
    application = memory_app(clock=lambda: NOW)
    for pid, name in ((ACME, "Acme Oy"), (GLOBEX, "Globex Corporation")):
        partner = {"name": name, "kind": "organisation", "roles": ["customer"]}
        opening = c.model("OpenPartnership")(
            partnership_id=pid, partner=partner, owner_unit="u", steward="s", occurred_at=NOW - timedelta(days=400)
        )
        application.execute([Request(opening, "tester", "api")])
    return application


def run(app: Verkosto, data: bytes, **options: bool) -> Report:
    return capture(app, data, OURS, "calendar-test", match, **options)


def events_of(app: Verkosto, pid: uuid.UUID) -> list[str]:
    return [e.type for e in app.domain_events(pid)]


def test_ours_are_named_theirs_only_point_to_the_partner() -> None:
    meetings, skipped, count = read_meetings(ics(event()), OURS)
    assert (count, skipped) == (1, [])
    (m,) = meetings
    assert m.ours == ("Anna Virtanen",) and m.organised_by_us
    assert m.their_domains == {"mail.acme.fi"} and m.their_names == {"Bob Builder"}
    assert m.start == datetime(2025, 5, 10, 9, tzinfo=UTC) and m.uid == "m-1@acme.fi"
    assert "m-1" not in m.key and len(m.key) == 32  # a digest: the UID holds an address


def test_declined_rooms_and_addresses_as_names_are_not_participants() -> None:
    attendees = (
        "ATTENDEE;CN=Anna Virtanen;PARTSTAT=DECLINED:mailto:anna.virtanen@vtt.fi",
        "ATTENDEE;CN=Room Kallio;CUTYPE=ROOM:mailto:kallio@vtt.fi",
        "ATTENDEE;CN=carl@vtt.fi:mailto:carl@vtt.fi",  # a CN that is an address is no name
        "ATTENDEE;CN=Dana Dev:mailto:dana@research.vtt.fi",  # below one of our domains
        "ATTENDEE;CN=Bob Builder;PARTSTAT=DECLINED:mailto:bob@acme.fi",
        "ATTENDEE;CN=Globex Corporation:urn:uuid:1234",
    )
    organiser = "ORGANIZER;CN=Eve:mailto:eve@globex.com"
    ((m,), _, _) = read_meetings(ics(event(attendees=attendees, organiser=organiser)), OURS)
    assert m.ours == ("Dana Dev",) and not m.organised_by_us
    assert m.their_domains == {"globex.com"} and m.their_names == {"Eve", "Globex Corporation"}


def test_ours_without_a_name_are_an_unnamed_colleague_and_without_ours_nothing_counts() -> None:
    unnamed = event(organiser="", attendees=("ATTENDEE:mailto:x@vtt.fi", "ATTENDEE:mailto:bob@acme.fi"))
    ((m,), _, _) = read_meetings(ics(unnamed), OURS)
    assert m.ours == (UNNAMED,) and not m.organised_by_us
    theirs_only = event(uid="m-2", organiser="", attendees=("ATTENDEE;CN=Bob:mailto:bob@acme.fi",))
    ((m2,), _, _) = read_meetings(ics(theirs_only), OURS)
    assert m2.ours == ()


def test_times_floating_in_the_zone_given_all_day_at_midnight_unknown_zones_skipped() -> None:
    helsinki = Ours.of(["vtt.fi"], "Europe/Helsinki")
    data = ics(
        event("float", "20250510T090000"),
        event("day", ";VALUE=DATE:20250510"),
        event("zoned", ";TZID=Europe/Helsinki:20250510T090000"),
        event("nowhere", ";TZID=Nowhere/Land:20250510T090000"),
        event("broken", "not-a-date"),
    )
    meetings, skipped, count = read_meetings(data, helsinki)
    starts = {m.uid: m.start for m in meetings}
    assert starts == {
        "float": datetime(2025, 5, 10, 6, tzinfo=UTC),
        "day": datetime(2025, 5, 9, 21, tzinfo=UTC),
        "zoned": datetime(2025, 5, 10, 6, tzinfo=UTC),
    }
    assert read_meetings(data, OURS)[0][0].start == datetime(2025, 5, 10, 9, tzinfo=UTC)  # UTC by default
    assert count == 5 and {(s.uid, s.reason) for s in skipped} == {
        ("nowhere", "unknown time zone 'Nowhere/Land'"),
        ("broken", "no readable start time"),
    }


def test_series_are_skipped_occurrences_keyed_apart_and_the_highest_sequence_holds() -> None:
    data = ics(
        event("series", extra=("RRULE:FREQ=WEEKLY",)),
        event("series", "20250512T090000Z", extra=("RECURRENCE-ID:20250512T090000Z",)),
        event("same", "20250510T090000Z", extra=("SEQUENCE:2",)),
        event("same", "20250501T090000Z", extra=("SEQUENCE:1",)),
        event("", "20250510T090000Z"),
    )
    meetings, skipped, _ = read_meetings(data, OURS)
    assert [(m.uid, m.start.day) for m in meetings] == [("series", 12), ("same", 10)]
    assert [s.reason for s in skipped] == ["recurring series: its occurrences are not taken as meetings",
                                           "no UID to know it by"]  # fmt: skip
    single = read_meetings(ics(event("series")), OURS)[0][0]
    assert single.key != meetings[0].key  # an occurrence is a meeting of its own


@pytest.mark.parametrize(
    "data", [b"", b"garbage", b"BEGIN:VEVENT\r\nUID:x\r\nEND:VEVENT\r\n", "\udc80".encode(errors="surrogatepass")]
)
def test_what_is_not_icalendar_is_malformed(data: bytes) -> None:
    with pytest.raises(MalformedIcs):
        read_meetings(data, OURS)


def test_our_domains_and_zone_are_checked() -> None:
    for domains, zone in (([], "UTC"), (["not a domain"], "UTC"), (["vtt.fi"], "Mars/Olympus"), (["vtt.fi"], "Europe")):
        with pytest.raises(ValueError):
            Ours.of(domains, zone)
    assert Ours.of([" VTT.fi. ", "vtt.fi"]).domains == ("vtt.fi",)


def test_a_meeting_is_recorded_once_as_a_contact_on_each_partner_it_names(app: Verkosto) -> None:
    both = event(attendees=(
        "ATTENDEE;CN=Anna Virtanen:mailto:anna.virtanen@vtt.fi", "ATTENDEE;CN=Bob:mailto:bob@acme.fi",
        "ATTENDEE;CN=GLOBEX  corporation:mailto:boss@elsewhere.org",
    ))  # fmt: skip
    report = run(app, ics(both))
    assert (report.recorded, report.unmatched, report.skipped, report.refused) == (2, 0, [], [])
    (contact,) = [e for e in app.domain_events(ACME) if e.type == "contact_logged"]
    assert (contact.channel, contact.direction, contact.participants) == ("meeting", "outbound", ("Anna Virtanen",))
    assert contact.meta.occurred_at == datetime(2025, 5, 10, 9, tzinfo=UTC) and contact.meta.actor == "calendar-test"
    assert contact.summary is None and contact.effort_minutes is None
    again = run(app, ics(both))  # the same invitation twice: nothing more
    assert (again.recorded, again.unchanged) == (0, 2)
    assert events_of(app, ACME) == ["partnership_opened", "contact_logged"]


def test_nothing_of_the_invitation_but_who_of_ours_and_when_is_stored(app: Verkosto) -> None:
    run(app, ics(event()))
    run(app, ics(event(start="20250511T090000Z", extra=("SEQUENCE:1",))))
    run(app, ics(event(start="20250511T090000Z", extra=("STATUS:CANCELLED",))))
    history = app.history(ACME, Partnership)
    stored = json.dumps([app.stored_events([ACME]), history], default=str)
    assert [e["type"] for e in history][1:] == [
        "contact_logged", "event_corrected", "event_retracted"
    ]  # fmt: skip
    for secret in (*SECRETS, "@", "m-1", "Bob Builder"):
        assert secret not in stored, secret


def test_a_moved_meeting_is_corrected_once_and_a_move_back_too(app: Verkosto) -> None:
    run(app, ics(event()))
    moved = run(app, ics(event(start="20250511T100000Z", extra=("SEQUENCE:1",))))
    assert (moved.moved, moved.recorded, moved.refused) == (1, 0, [])
    correction = app.domain_events(ACME)[-1]
    assert correction.type == "event_corrected" and correction.event_id == f"{ACME}:2"
    assert correction.changes.occurred_at == datetime(2025, 5, 11, 10, tzinfo=UTC)
    assert correction.reason == "calendar: meeting moved"
    assert run(app, ics(event(start="20250511T100000Z"))).unchanged == 1
    back = run(app, ics(event(extra=("SEQUENCE:2",))))  # to where it first was
    assert back.moved == 1 and events_of(app, ACME).count("event_corrected") == 2


def test_a_meeting_at_the_time_recorded_answers_unchanged_not_an_error(app: Verkosto) -> None:
    run(app, ics(event()))
    report = run(app, ics(event(extra=("SEQUENCE:3", "DESCRIPTION:agenda changed"))))
    assert (report.unchanged, report.moved, report.refused) == (1, 0, [])
    assert events_of(app, ACME) == ["partnership_opened", "contact_logged"]


def test_a_cancelled_meeting_is_retracted_once_and_one_never_recorded_is_skipped(app: Verkosto) -> None:
    run(app, ics(event()))
    cancelled = run(app, ics(event(extra=("STATUS:CANCELLED",))))
    assert cancelled.cancelled == 1
    retraction = app.domain_events(ACME)[-1]
    assert (retraction.type, retraction.event_id, retraction.reason) == (
        "event_retracted", f"{ACME}:2", "calendar: meeting cancelled"
    )  # fmt: skip
    assert run(app, ics(event(), method="CANCEL")).unchanged == 1  # already retracted: nothing more
    never = run(app, ics(event("other", extra=("STATUS:CANCELLED",))))
    assert [s.reason for s in never.skipped] == ["cancelled before it was recorded"] and never.cancelled == 0
    assert events_of(app, ACME).count("event_retracted") == 1
    moved_after = run(app, ics(event(start="20250512T090000Z")))  # retracted stays retracted
    assert moved_after.moved == 0 and moved_after.skipped[0].reason.startswith("retracted in Verkosto")


def test_future_unmatched_and_ours_less_meetings_record_nothing(app: Verkosto) -> None:
    future = event("later", (NOW + timedelta(days=1)).strftime("%Y%m%dT%H%M%SZ"))
    nobody = event("internal", attendees=("ATTENDEE;CN=Anna:mailto:anna@vtt.fi", "ATTENDEE:mailto:x@initech.com"))
    theirs = event("theirs", organiser="", attendees=("ATTENDEE:mailto:bob@acme.fi",))
    report = run(app, ics(future, nobody, theirs))
    assert (report.meetings, report.recorded, report.unmatched) == (3, 0, 1)
    assert {(s.uid, s.reason) for s in report.skipped} == {("later", NOT_YET), ("theirs", "none of ours took part")}
    assert events_of(app, ACME) == ["partnership_opened"]


def test_a_dry_run_says_what_would_be_recorded_and_records_nothing(app: Verkosto) -> None:
    dry = run(app, ics(event(), event("two")), dry_run=True)
    assert (dry.dry_run, dry.recorded) == (True, 2) and events_of(app, ACME) == ["partnership_opened"]
    run(app, ics(event()))
    later = run(app, ics(event(), event(extra=("STATUS:CANCELLED",), uid="two")), dry_run=True)
    assert (later.already_recorded, later.cancelled, later.recorded) == (1, 0, 0)


def test_the_commands_carry_no_address_summary_or_description(app: Verkosto) -> None:
    sent: list[c.Command] = []
    execute = app.execute
    app.execute = lambda requests, *a, **k: sent.extend(r.command for r in requests) or execute(requests, *a, **k)  # type: ignore[method-assign]
    run(app, ics(event()))
    run(app, ics(event(start="20250511T090000Z")))
    run(app, ics(event(start="20250511T090000Z", extra=("STATUS:CANCELLED",))))
    assert [type(s).__name__ for s in sent] == ["LogContact", "CorrectEvent", "RetractEvent"]
    text = " ".join(s.model_dump_json() for s in sent)
    for secret in (*SECRETS, "@", "m-1", "Bob Builder", "mailto"):
        assert secret not in text, secret
    assert all(str(s.command_id).startswith(f"ics:{ACME}:") for s in sent)


def test_parent_domains_stop_above_the_top_level() -> None:
    assert parent_domains("Mail.Acme.fi.") == ["mail.acme.fi", "acme.fi"]
    assert parent_domains("acme.fi") == ["acme.fi"] and parent_domains("fi") == [] and parent_domains("a..fi") == []
