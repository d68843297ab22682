"""Onboarding: partnerships the organisation already has, from a CSV file, through the
command path everything takes (so the bus and every projection see them).

Columns (case-insensitive; ``;`` or ``,`` delimited; a UTF-8 BOM is fine): partner,
roles, unit, steward, since (required); kind (organisation), stage (analyse),
segment_now and segment_future (both or neither), last_contact with contact_channel and
contact_direction, domains. Lists split at ``;`` or ``,``. A row becomes, at ``since``
(the opening is back-dated): OpenPartnership; ChangeStage to its stage with reason
``imported``; Segment. A last contact becomes LogContact with the steward as
participant, only with its channel and direction: they weigh in trust, so none is guessed.

Idempotent: a row's partnership id is a UUIDv5 of its normalised partner name and unit,
each command's id names it and the step: the same file again records nothing, and a
step not recorded yet (refused, or newly given) is; one recorded stays as it was, however
the row changes (corrections take the ordinary commands).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID, uuid5

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from contract import commands as c
from contract.commands import When
from domain.names import normalise
from domain.stages import IMPORTED
from domain.values import Channel, Direction, Importance, MailDomain, Partner, PartnerKind, Roles, Stage, StorableName
from services.application import Accepted, Rejected, Request, Verkosto

# Fixed for good: another namespace would make every imported file import again.
NAMESPACE = UUID("5d0c1a6e-3f3b-5b8e-9a57-7e2f0c4b9d11")
REQUIRED = ("partner", "roles", "unit", "steward", "since")
LOWERED = ("kind", "roles", "stage", "contact_channel", "contact_direction", "segment_now", "segment_future")
IMPORTANCE_WORDS = {"very_low": "--", "low": "-", "high": "+", "very_high": "++"}
BATCH_ROWS = 500
NO_OFFSET = "needs a UTC offset (2019-03-01T09:00+02:00), or give the date alone (midnight UTC)"
# (id, partner name, similarity) of the existing partnerships like each name asked about.
SimilarNames = Callable[[list[str]], dict[str, list[tuple[UUID, str, float]]]]
Progress = Callable[[int, int], None]  # (rows done, rows to do)


class MalformedCsv(ValueError):
    """The file as a whole cannot be read: no row is imported."""


# A date is its midnight in UTC; a moment without an offset is refused: its zone would be a guess.
Moment = Annotated[When, BeforeValidator(lambda v: f"{v}T00:00:00+00:00" if isinstance(v, str) and len(v) == 10 else v)]


class ImportRow(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    partner: StorableName
    kind: PartnerKind = PartnerKind.ORGANISATION
    roles: Roles
    unit: StorableName
    steward: StorableName
    since: Moment
    stage: Stage = Stage.ANALYSE
    segment_now: Importance | None = None
    segment_future: Importance | None = None
    last_contact: Moment | None = None
    contact_channel: Channel | None = None
    contact_direction: Direction | None = None
    domains: Annotated[tuple[MailDomain, ...], Field(max_length=20)] = ()

    def problems(self, now: datetime) -> list[tuple[str, str]]:
        """(column, message) of what the columns say together that cannot be."""
        contact = self.last_contact
        checks = [
            ("since", self.since > now, "lies in the future"),
            ("stage", self.stage == Stage.ENDED, "an ended partnership is not imported"),
            ("segment_now", self.segment_now is None and self.segment_future is not None, "is needed too"),
            ("segment_future", self.segment_future is None and self.segment_now is not None, "is needed too"),
            ("last_contact", contact is not None and not self.since <= contact <= now, "is before since or to come"),
        ]
        for column in ("contact_channel", "contact_direction"):
            given = getattr(self, column) is not None
            message = "is given without last_contact" if given else "is needed with last_contact (never guessed)"
            checks.append((column, given != (contact is not None), message))
        return [(column, message) for column, failed, message in checks if failed]


COLUMNS = tuple(ImportRow.model_fields)


@dataclass(frozen=True)
class Refusal:
    row: int  # the line of the file the row begins on (the header is line 1)
    reason: str  # invalid, malformed_row, repeated_in_file, possible_duplicate, or the application's code
    message: str
    column: str | None = None
    matches: tuple[tuple[UUID, str, float], ...] = ()


@dataclass(frozen=True)
class Planned:
    row: int
    values: ImportRow
    partnership_id: UUID
    commands: tuple[c.Command, ...]


@dataclass
class Report:
    dry_run: bool
    created: list[Planned] = field(default_factory=list)  # in a dry run: would be
    already_imported: list[Planned] = field(default_factory=list)
    refused: list[Refusal] = field(default_factory=list)
    events: int = 0  # recorded by this run


def partnership_id(partner: str, unit: str) -> UUID:
    return uuid5(NAMESPACE, f"{normalise(partner)}\n{normalise(unit)}")


def read_rows(data: bytes) -> tuple[list[tuple[int, dict[str, str]]], list[Refusal]]:
    """(line, {column: stripped cell}) of each non-blank row, empty cells left out; and
    the rows with more cells than columns. MalformedCsv: the file cannot be read."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise MalformedCsv(f"is not UTF-8 (byte {error.start})") from None
    try:  # the header's names hold no delimiter: they alone tell which one it is
        delimiter = csv.Sniffer().sniff(text.split("\n", 1)[0], delimiters=",;").delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    rows, refused = [], []
    try:
        header = [name.strip().lower().replace(" ", "_").replace("-", "_") for name in next(reader, [])]
        _check_header(header)
        line = reader.line_num + 1
        for cells in (list(map(str.strip, cells)) for cells in reader):
            # Spreadsheets drop trailing empty cells, or add some: neither is an error.
            if any(cells[len(header) :]):
                refused.append(Refusal(line, "malformed_row", "has more cells than the header has columns"))
            elif any(cells):
                rows.append((line, {name: cell for name, cell in zip(header, cells, strict=False) if cell}))
            line = reader.line_num + 1
    except csv.Error as error:
        raise MalformedCsv(f"cannot be read at line {reader.line_num}: {error}") from None
    return rows, refused


def _check_header(header: list[str]) -> None:
    if not any(header):
        raise MalformedCsv("is empty: its first line names the columns")
    for problem, names in (
        ("has unknown column(s)", [n for n in header if n not in COLUMNS]),
        ("names column(s) twice", sorted({n for n in header if header.count(n) > 1})),
        ("lacks required column(s)", [n for n in REQUIRED if n not in header]),
    ):
        if names:
            raise MalformedCsv(f"{problem}: {', '.join(names)} (the columns: {', '.join(COLUMNS)})")


def validate(line: int, cells: dict[str, str], now: datetime) -> ImportRow | list[Refusal]:
    values: dict[str, Any] = {k: v.lower() if k in LOWERED else v for k, v in cells.items()}
    for name in ("segment_now", "segment_future"):
        values[name] = IMPORTANCE_WORDS.get(values.get(name, ""), values.get(name))
    for name in ("roles", "domains"):
        if name in values:
            values[name] = [item.strip() for item in values[name].replace(",", ";").split(";") if item.strip()]
    try:
        row = ImportRow.model_validate(values)
        problems = row.problems(now)
    except ValidationError as error:
        problems = [
            (str(e["loc"][0]), "".join(f"item {p + 1}: " for p in e["loc"][1:] if isinstance(p, int))
             + {"timezone_aware": NO_OFFSET, "enum": f"{e['msg']}, not {e['input']!r:.60}"}.get(e["type"], e["msg"]))
            for e in error.errors()
        ]  # fmt: skip
    first: dict[str, str] = {}  # one problem a column: a wrong item also leaves the list too short
    for column, message in problems:
        first.setdefault(column, message)
    return [Refusal(line, "invalid", message, column) for column, message in first.items()] if problems else row


def commands_for(row: ImportRow) -> tuple[UUID, tuple[c.Command, ...]]:
    pid = partnership_id(row.partner, row.unit)
    partner = Partner(name=row.partner, kind=row.kind, roles=row.roles, domains=row.domains)
    steps: list[tuple[str, str, datetime, dict[str, Any]]] = [
        ("open", "OpenPartnership", row.since, {"partner": partner, "owner_unit": row.unit, "steward": row.steward})
    ]
    if row.stage != Stage.ANALYSE:
        steps.append(("stage", "ChangeStage", row.since, {"stage": row.stage, "reason": IMPORTED}))
    if row.segment_now is not None:
        steps.append(("segment", "Segment", row.since, {"now": row.segment_now, "future": row.segment_future}))
    if row.last_contact is not None:
        contact = {"channel": row.contact_channel, "direction": row.contact_direction, "participants": [row.steward]}
        steps.append(("contact", "LogContact", row.last_contact, contact))
    return pid, tuple(
        c.model(name).model_validate(
            {"type": c.BY_MODEL[c.model(name)].event.type, "partnership_id": pid, "occurred_at": at,
             "command_id": f"import:{pid}:{step}", **fields}
        )
        for step, name, at, fields in steps
    )  # fmt: skip


def plan(data: bytes, now: datetime) -> tuple[list[Planned], list[Refusal]]:
    """Each row's commands, or why it is refused; a partner named again is refused."""
    rows, refused = read_rows(data)
    planned: list[Planned] = []
    first_line: dict[str, int] = {}
    for line, cells in rows:
        checked = validate(line, cells, now)
        if isinstance(checked, list):
            refused += checked
        elif (first := first_line.setdefault(normalise(checked.partner), line)) != line:
            refused.append(Refusal(line, "repeated_in_file", f"the partner is on line {first} too", "partner"))
        else:
            planned.append(Planned(line, checked, *commands_for(checked)))
    return planned, refused


def _like_others(fresh: list[Planned], similar: SimilarNames, ours: set[UUID]) -> list[Refusal]:
    """Rows whose partner closely matches a partnership this file does not create (so a
    second run, or one after a partial first, agrees with a single run)."""
    found = similar([p.values.partner for p in fresh]) if fresh else {}
    refused = []
    for p in fresh:
        if matches := tuple(m for m in found.get(p.values.partner, []) if m[0] not in ours):
            named = ", ".join(f"{name} ({score:.2f})" for _, name, score in matches)
            message = f"closely matches {named}: check it, or import with allow_similar"
            refused.append(Refusal(p.row, "possible_duplicate", message, "partner", matches))
    return refused


def import_partnerships(
    app: Verkosto,
    data: bytes,
    actor: str,
    *,
    dry_run: bool = False,
    similar: SimilarNames | None = None,
    batch_rows: int = BATCH_ROWS,
    progress: Progress | None = None,
) -> Report:
    """Plans the file and (unless ``dry_run``) records it, ``batch_rows`` rows a batch.
    ``similar`` None: no duplicate check (allow_similar). MalformedCsv: nothing done."""
    planned, refused = plan(data, app.clock())
    ids = [str(cmd.command_id) for p in planned for cmd in p.commands]
    recorded = {i for n in range(0, len(ids), 5_000) for i in app.find_commands(ids[n : n + 5_000])}
    report = Report(dry_run, refused=refused)
    todo: list[Planned] = []
    for p in planned:
        (report.already_imported if all(cmd.command_id in recorded for cmd in p.commands) else todo).append(p)
    if similar is not None:  # rows not opened yet only: an opened one was checked then
        fresh = [p for p in todo if p.commands[0].command_id not in recorded]
        report.refused += _like_others(fresh, similar, {p.partnership_id for p in planned})
        held = {r.row for r in report.refused}
        todo = [p for p in todo if p.row not in held]
    if dry_run:
        report.created = todo
    else:
        _record(app, todo, actor, batch_rows, report, progress)
    report.refused.sort(key=lambda r: r.row)
    return report


def _record(app: Verkosto, todo: list[Planned], actor: str, rows: int, report: Report, tick: Progress | None) -> None:
    for start in range(0, len(todo), rows):
        batch = todo[start : start + rows]
        # Openings first: a row's other steps must not touch a partnership its opening did not make.
        opened = app.execute([Request(p.commands[0], actor, "api") for p in batch])
        ok = [p for p, o in zip(batch, opened, strict=True) if isinstance(o, Accepted)]
        rest = iter(app.execute([Request(cmd, actor, "api") for p in ok for cmd in p.commands[1:]]))
        for p, first in zip(batch, opened, strict=True):
            mine = [first, *(next(rest) for _ in p.commands[1:] if isinstance(first, Accepted))]
            report.events += sum(1 for o in mine if isinstance(o, Accepted) and not o.duplicate)
            if (refusal := next((o for o in mine if isinstance(o, Rejected)), None)) is None:
                report.created.append(p)
            else:
                report.refused.append(Refusal(p.row, refusal.code, refusal.message))
        if tick is not None:
            tick(start + len(batch), len(todo))


def similar_in(conn: Any, schema: str, limit: int = 5) -> SimilarNames:
    """The duplicate check on the directory read model (a moment behind the writes). LookupError: none."""
    from projections.queries.directory import similar_partnerships
    from projections.registry import active_schema

    rm = active_schema(conn, schema, "directory")

    def look(names: list[str]) -> dict[str, list[tuple[UUID, str, float]]]:
        return {n: [(UUID(i), name, s) for i, name, s in similar_partnerships(conn, rm, n, limit)] for n in names}

    return look
