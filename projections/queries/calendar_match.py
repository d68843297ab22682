"""Which open partnerships a meeting's attendees point to, on the directory read model
(projections/directory.py), for calendar capture (services/calendar_capture.py).

A meeting is evidence of a contact, so only exact matches count; a wrong partner is worse
than none. An attendee's e-mail domain matches a partner that named it among its domains,
or named a parent of it (mail.acme.fi is acme.fi's); a person partner is never matched
by domain (a person's domain, gmail.com say, is not theirs alone). A display name
matches a partner whose name, normalised (domain/names.py), is the same: no similarity,
no substring. Ended and merged partnerships are not matched.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any
from uuid import UUID

import psycopg
from psycopg import sql
from psycopg.rows import tuple_row

from domain.names import normalise
from projections.registry import active_schema

# The GIN index on domains answers the overlap, the name index the equality.
_CANDIDATES = """
SELECT partnership_id, name_key, kind, domains FROM {rm}.partnerships
WHERE NOT ended AND (
    (kind <> 'person' AND domains && %(domains)s::text[])
    OR (name_key <> '' AND name_key = ANY(%(names)s::text[]))
)
ORDER BY name_key, partnership_id
"""


def parent_domains(domain: str) -> list[str]:
    """The domain and each parent of it with at least two labels: mail.acme.fi gives
    mail.acme.fi and acme.fi, never fi."""
    labels = domain.strip().lower().rstrip(".").split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1) if all(labels[i:])]


def partners_for_meetings(
    conn: psycopg.Connection[Any], schema: str, meetings: Sequence[tuple[Iterable[str], Iterable[str]]]
) -> list[list[UUID]]:
    """For each meeting, given as (e-mail domains, display names) of its attendees not
    ours, the open partnerships it points to (in name order), all meetings in one query.
    ``schema``: the base schema; LookupError if the directory has no active version."""
    wanted = [
        ({d for domain in domains for d in parent_domains(domain)}, {k for name in names if (k := normalise(name))})
        for domains, names in meetings
    ]
    all_domains = sorted({d for domains, _ in wanted for d in domains})
    all_names = sorted({n for _, names in wanted for n in names})
    if not all_domains and not all_names:
        return [[] for _ in wanted]
    rm = active_schema(conn, schema, "directory")
    with conn.cursor(row_factory=tuple_row) as cur:  # whatever rows the connection makes by default
        rows = cur.execute(sql.SQL(_CANDIDATES).format(rm=rm), {"domains": all_domains, "names": all_names}).fetchall()
    # Row numbers by domain and by name: each meeting's matches are looked up, not scanned.
    by_key: dict[tuple[str, str], list[int]] = {}
    for number, (_, name_key, kind, partner_domains) in enumerate(rows):
        by_key.setdefault(("name", name_key), []).append(number)
        for domain in partner_domains if kind != "person" else ():
            by_key.setdefault(("domain", domain), []).append(number)
    found: list[list[UUID]] = []
    for domains, names in wanted:
        keys = [("domain", d) for d in domains] + [("name", n) for n in names]
        numbers = sorted({number for key in keys for number in by_key.get(key, ())})
        found.append([UUID(str(rows[number][0])) for number in numbers])
    return found


def partners_for_meeting(
    conn: psycopg.Connection[Any], schema: str, domains: Iterable[str], names: Iterable[str]
) -> list[UUID]:
    """The open partnerships one meeting points to (see partners_for_meetings)."""
    return partners_for_meetings(conn, schema, [(domains, names)])[0]
