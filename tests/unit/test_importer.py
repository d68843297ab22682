"""The CSV import (services/importer.py): reading, per-row validation, planning with
deterministic ids, and the import itself on the real application over the in-memory
recorder (tests/unit/fakes.py)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from contract import commands as c
from domain.partnership import Partnership
from domain.values import Importance, Stage
from services import importer
from services.application import Request
from services.importer import NO_OFFSET, MalformedCsv, SimilarNames, import_partnerships, plan, read_rows
from tests.unit.fakes import memory_app

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
HEADER = "partner,kind,roles,unit,steward,since,stage,segment_now,segment_future,last_contact,contact_channel,contact_direction,domains"  # noqa: E501
ACME = "Acme Oy,,customer;funder,research,Aino,2019-03-01,manage,+,++,2024-05-02,meeting,outbound,acme.fi"
BETA = "Beta ry,group,user,operations,Ville,2020-01-01T09:00+02:00,,,,,,,"


def csv(*rows: str) -> bytes:
    return "\n".join([HEADER, *rows]).encode()


def app_at_now() -> Any:
    return memory_app(clock=lambda: NOW)


# Reading --------------------------------------------------------------------------------


def test_semicolons_a_bom_and_loose_header_names_are_read() -> None:
    data = "\ufeffPartner; Roles ;Unit;Steward;SINCE\nAcme Oy;customer,funder;research;Aino;2019-03-01\n".encode()
    rows, refused = read_rows(data)
    assert refused == []
    assert rows == [(2, {"partner": "Acme Oy", "roles": "customer,funder", "unit": "research", "steward": "Aino",
                         "since": "2019-03-01"})]  # fmt: skip


def test_blank_lines_and_dropped_trailing_cells_are_no_error_and_lines_are_the_files() -> None:
    data = csv('"Multi\nline Oy",,customer,u,s,2019-01-01', "", "Short Oy,,customer,u,s,2019-01-01", ",,,,")
    rows, refused = read_rows(data)
    assert refused == []
    assert [(line, cells["partner"]) for line, cells in rows] == [(2, "Multi\nline Oy"), (5, "Short Oy")]


def test_a_row_with_more_cells_than_columns_is_refused_alone() -> None:
    rows, refused = read_rows(csv("Acme Oy,organisation,customer,u,s,2019-01-01,,,,,,,,surplus", BETA))
    assert [(r.row, r.reason) for r in refused] == [(2, "malformed_row")]
    assert [line for line, _ in rows] == [3]


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"", "is empty"),
        (b"\xff\xfepartner", "is not UTF-8"),
        (b"partner,roles,unit,steward,since,colour\n", "has unknown column(s): colour"),
        (b"partner,roles,unit,steward\n", "lacks required column(s): since"),
        (b"partner,roles,unit,steward,since,Roles\n", "names column(s) twice: roles"),
    ],
)
def test_a_file_that_cannot_be_read_is_refused_whole(data: bytes, says: str) -> None:
    with pytest.raises(MalformedCsv, match=says.replace("(", r"\(").replace(")", r"\)")):
        read_rows(data)


def test_a_malformed_file_imports_nothing() -> None:
    app = app_at_now()
    with pytest.raises(MalformedCsv):
        import_partnerships(app, csv(ACME).replace(b"partner,", b"name,", 1), "tester")
    assert app.recorder.max_notification_id() in (None, 0)


# Validating -----------------------------------------------------------------------------


def test_a_valid_row_is_planned_with_its_values() -> None:
    (planned,), refused = plan(csv(ACME), NOW)
    assert refused == []
    v = planned.values
    assert (v.stage, v.segment_now, v.segment_future) == (Stage.MANAGE, Importance.HIGH, Importance.VERY_HIGH)
    assert v.since == datetime(2019, 3, 1, tzinfo=UTC)  # a date is its midnight in UTC
    assert [r.value for r in v.roles] == ["customer", "funder"] and v.domains == ("acme.fi",)


def test_enum_cells_are_case_insensitive_and_importance_may_be_spelled_out() -> None:
    (planned,), _ = plan(csv("Acme Oy,Organisation,Customer,u,s,2019-01-01,Maintain,high,very_high"), NOW)
    assert (planned.values.stage, planned.values.segment_now) == (Stage.MAINTAIN, Importance.HIGH)


@pytest.mark.parametrize(
    ("row", "column"),
    [
        ("Acme Oy,,nonsense,u,s,2019-01-01", "roles"),
        ("Acme Oy,,customer;customer,u,s,2019-01-01", "roles"),
        ("Acme Oy,,,u,s,2019-01-01", "roles"),
        ("Acme Oy,robot,customer,u,s,2019-01-01", "kind"),
        ("Acme Oy,,customer,,s,2019-01-01", "unit"),
        ("Acme Oy,,customer,u,,2019-01-01", "steward"),
        ("Acme Oy,,customer,u,s,1.3.2019", "since"),
        ("Acme Oy,,customer,u,s,2030-01-01", "since"),
        ("Acme Oy,,customer,u,s,1800-01-01", "since"),
        ("Acme Oy,,customer,u,s,2019-01-01,ended", "stage"),
        ("Acme Oy,,customer,u,s,2019-01-01,nowhere", "stage"),
        ("Acme Oy,,customer,u,s,2019-01-01,,+++,+", "segment_now"),
        ("Acme Oy,,customer,u,s,2019-01-01,,+", "segment_future"),
        ("Acme Oy,,customer,u,s,2019-01-01,,,+", "segment_now"),
        ("Acme Oy,,customer,u,s,2019-01-01,,,,2018-12-31,call,inbound", "last_contact"),
        ("Acme Oy,,customer,u,s,2019-01-01,,,,2030-01-01,call,inbound", "last_contact"),
        ("Acme Oy,,customer,u,s,2019-01-01,,,,,call", "contact_channel"),
        ("Acme Oy,,customer,u,s,2019-01-01,,,,2020-01-01,fax,inbound", "contact_channel"),
        ("Acme Oy,,customer,u,s,2019-01-01,,,,,,inbound", "contact_direction"),
        ("Acme Oy,,customer,u,s,2019-01-01,,,,,,,not a domain", "domains"),
    ],
)
def test_each_invalid_cell_is_refused_naming_its_row_and_column(row: str, column: str) -> None:
    assert [(r.row, r.column, r.reason) for r in plan(csv(BETA, row), NOW)[1]] == [(3, column, "invalid")]


def test_a_last_contact_without_its_channel_and_direction_is_refused_not_guessed() -> None:
    refused = plan(csv("Acme Oy,,customer,u,s,2019-01-01,,,,2020-01-01"), NOW)[1]
    assert {(r.column, r.message) for r in refused} == {
        ("contact_channel", "is needed with last_contact (never guessed)"),
        ("contact_direction", "is needed with last_contact (never guessed)"),
    }


def test_a_moment_without_an_offset_is_refused_with_a_hint() -> None:
    (refused,) = plan(csv("Acme Oy,,customer,u,s,2019-01-01T09:00"), NOW)[1]
    assert (refused.column, refused.message) == ("since", NO_OFFSET)


def test_a_wrong_role_is_one_problem_naming_the_item() -> None:
    (refused,) = plan(csv("Acme Oy,,customer;nonsense,u,s,2019-01-01"), NOW)[1]
    assert refused.column == "roles" and refused.message.startswith("item 2: Input should be 'customer'")
    assert refused.message.endswith(", not 'nonsense'")  # what was given, so it can be found


def test_a_partner_named_again_in_the_file_is_refused_however_it_is_written() -> None:
    planned, refused = plan(csv(ACME, BETA, "ACME  oy!,,user,elsewhere,s,2019-01-01"), NOW)
    assert [p.row for p in planned] == [2, 3]
    assert [(r.row, r.reason, r.message) for r in refused] == [(4, "repeated_in_file", "the partner is on line 2 too")]


# Planning -------------------------------------------------------------------------------


def test_ids_are_deterministic_from_the_normalised_partner_and_unit() -> None:
    assert importer.partnership_id("Acme Oy", "research") == importer.partnership_id("  ACME oy ", "Research")
    assert importer.partnership_id("Acme Oy", "research") != importer.partnership_id("Acme Oy", "sales")
    assert importer.partnership_id("Acme Oy", "research") != importer.partnership_id("Acne Oy", "research")
    (first,), _ = plan(csv(ACME), NOW)
    (again,), _ = plan(csv(ACME), NOW)
    assert first.partnership_id == again.partnership_id == importer.partnership_id("Acme Oy", "research")


def test_a_row_plans_its_steps_with_their_times_and_ids() -> None:
    (planned,), _ = plan(csv(ACME), NOW)
    pid, since = planned.partnership_id, datetime(2019, 3, 1, tzinfo=UTC)
    opened, stage, segment, contact = planned.commands
    assert isinstance(opened, c.model("OpenPartnership")) and opened.target_id() == pid
    steps = ("open", "stage", "segment", "contact")
    assert [cmd.command_id for cmd in planned.commands] == [f"import:{pid}:{step}" for step in steps]
    assert [cmd.occurred_at for cmd in planned.commands] == [since, since, since, datetime(2024, 5, 2, tzinfo=UTC)]
    assert (stage.stage, stage.reason) == (Stage.MANAGE, "imported")  # type: ignore[attr-defined]
    assert (segment.now, segment.future) == (Importance.HIGH, Importance.VERY_HIGH)  # type: ignore[attr-defined]
    assert contact.participants == ("Aino",) and contact.channel == "meeting"  # type: ignore[attr-defined]
    assert all(cmd.target_id() == pid for cmd in planned.commands)
    (beta,), _ = plan(csv(BETA), NOW)  # at analyse, unsegmented, no contact: an opening alone
    assert [cmd.occurred_at for cmd in beta.commands] == [datetime(2020, 1, 1, 7, tzinfo=UTC)]


# Importing ------------------------------------------------------------------------------


def test_an_import_creates_each_partnership_back_dated_at_its_stage() -> None:
    app = app_at_now()
    report = import_partnerships(app, csv(ACME, BETA), "importer")
    assert (len(report.created), report.refused, report.events) == (2, [], 5)
    acme = app.get(importer.partnership_id("Acme Oy", "research"), Partnership)
    assert acme.started_at == acme.stage_since == datetime(2019, 3, 1, tzinfo=UTC)
    assert acme.stage == Stage.MANAGE and acme.segment is not None and acme.segment.rising
    assert acme.last_contact_at == datetime(2024, 5, 2, tzinfo=UTC) and acme.steward == "Aino"
    history = app.domain_events(acme.id)
    assert [e.type for e in history] == ["partnership_opened", "stage_changed", "segmented", "contact_logged"]
    assert history[1].reason == "imported" and history[1].previous == Stage.ANALYSE
    assert {e.meta.actor for e in history} == {"importer"} and {e.meta.source for e in history} == {"api"}
    beta = app.get(importer.partnership_id("Beta ry", "operations"), Partnership)
    assert (beta.stage, beta.version, beta.partner.kind.value) == (Stage.ANALYSE, 1, "group")


def test_the_same_file_twice_records_nothing_more() -> None:
    app = app_at_now()
    first = import_partnerships(app, csv(ACME, BETA), "importer")
    events = app.recorder.max_notification_id()
    again = import_partnerships(app, csv(ACME, BETA), "importer")
    assert app.recorder.max_notification_id() == events == first.events
    assert (again.created, again.events, again.refused) == ([], 0, [])
    assert [p.row for p in again.already_imported] == [2, 3]


def test_a_dry_run_records_nothing_and_lists_what_would_be_created_and_what_is_there() -> None:
    app = app_at_now()
    import_partnerships(app, csv(BETA), "importer")
    events = app.recorder.max_notification_id()
    report = import_partnerships(app, csv(ACME, BETA, "Broken,,x,u,s,2019-01-01"), "importer", dry_run=True)
    assert app.recorder.max_notification_id() == events and report.dry_run and report.events == 0
    assert [p.values.partner for p in report.created] == ["Acme Oy"]
    assert [p.values.partner for p in report.already_imported] == ["Beta ry"]
    assert [(r.row, r.column) for r in report.refused] == [(4, "roles")]


def test_a_row_given_more_later_records_only_its_new_steps() -> None:
    app = app_at_now()
    import_partnerships(app, csv(BETA), "importer")  # opened at analyse, nothing more
    more = "Beta ry,group,user,operations,Ville,2020-01-01T09:00+02:00,prioritise,-,+"
    report = import_partnerships(app, csv(more), "importer", similar=similar_to({})[0])
    assert ([p.row for p in report.created], report.events, report.refused) == ([2], 2, [])
    beta = app.get(importer.partnership_id("Beta ry", "operations"), Partnership)
    assert beta.stage == Stage.PRIORITISE and beta.stage_since == datetime(2020, 1, 1, 7, tzinfo=UTC)
    changed = "Beta ry,group,user,operations,Ville,2020-01-01T09:00+02:00,manage,+,+"
    again = import_partnerships(app, csv(changed), "importer")  # recorded steps stay as they were
    assert (again.events, [p.row for p in again.already_imported]) == (0, [2])


def test_a_refused_opening_stops_the_rest_of_its_row() -> None:
    app = app_at_now()
    pid = importer.partnership_id("Acme Oy", "research")
    # That id already taken by an ordinary opening (no import command id), earlier than the
    # row's since, so the domain would take the row's other steps: they must not be sent.
    partner = {"name": "Acme Oy", "kind": "organisation", "roles": ["customer"]}
    opened = c.model("OpenPartnership").model_validate(
        {"partnership_id": pid, "partner": partner, "owner_unit": "research", "steward": "Aino",
         "occurred_at": datetime(2018, 1, 1, tzinfo=UTC)}
    )  # fmt: skip
    app.execute([Request(opened, "tester", "api")])
    report = import_partnerships(app, csv(ACME, BETA), "importer")
    assert [(r.row, r.reason) for r in report.refused] == [(2, "already_exists")]
    assert [p.row for p in report.created] == [3]
    acme = app.get(pid, Partnership)
    assert (acme.stage, acme.version, acme.segment) == (Stage.ANALYSE, 1, None)


def test_an_application_refusal_is_reported_with_its_code() -> None:
    app = app_at_now()
    report = import_partnerships(app, csv(BETA), "A" * 201)  # no event can name such an actor
    assert [(r.row, r.reason) for r in report.refused] == [(2, "invalid_command")]
    assert report.created == [] and app.recorder.max_notification_id() in (None, 0)


def similar_to(found: dict[str, list[tuple[uuid.UUID, str, float]]]) -> tuple[SimilarNames, list[list[str]]]:
    """A stand-in for the directory's duplicate check, and the names it was asked about."""
    asked: list[list[str]] = []

    def look(names: list[str]) -> dict[str, list[tuple[uuid.UUID, str, float]]]:
        asked.append(names)
        return {n: found.get(n, []) for n in names}

    return look, asked


def test_a_partner_like_an_existing_one_is_refused_as_a_possible_duplicate() -> None:
    app = app_at_now()
    other = uuid.uuid4()
    look, asked = similar_to({"Acme Oy": [(other, "Acme Oyj", 0.7)]})
    report = import_partnerships(app, csv(ACME, BETA), "importer", similar=look)
    (refusal,) = report.refused
    assert (refusal.row, refusal.reason, refusal.column) == (2, "possible_duplicate", "partner")
    assert refusal.matches == ((other, "Acme Oyj", 0.7),) and "Acme Oyj (0.70)" in refusal.message
    assert [p.row for p in report.created] == [3] and asked == [["Acme Oy", "Beta ry"]]
    allowed = import_partnerships(app, csv(ACME, BETA), "importer", similar=None)  # allow_similar
    assert [p.row for p in allowed.created] == [2] and [p.row for p in allowed.already_imported] == [3]


def test_a_match_this_file_creates_is_no_duplicate_and_opened_rows_are_not_asked_again() -> None:
    app = app_at_now()
    acme, beta = importer.partnership_id("Acme Oy", "research"), importer.partnership_id("Beta ry", "operations")
    # A second run sees the first run's partnerships, the one of another row among them.
    look, asked = similar_to({"Acme Oy": [(acme, "Acme Oy", 1.0), (beta, "Beta ry", 0.3)]})
    report = import_partnerships(app, csv(ACME, BETA), "importer", similar=look)
    assert report.refused == [] and len(report.created) == 2
    again = import_partnerships(app, csv(ACME, BETA), "importer", similar=look)
    assert len(again.already_imported) == 2 and asked == [["Acme Oy", "Beta ry"]]  # not asked the second time


def test_rows_are_recorded_in_batches_with_progress() -> None:
    app = app_at_now()
    rows = [f"Partner {n:03d},,customer,u,s,2019-01-01,prioritise" for n in range(25)]
    ticks: list[tuple[int, int]] = []
    report = import_partnerships(app, csv(*rows), "importer", batch_rows=10, progress=lambda d, t: ticks.append((d, t)))
    assert len(report.created) == 25 and report.events == 50
    assert ticks == [(10, 25), (20, 25), (25, 25)]
