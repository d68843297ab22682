"""`verkosto token issue | list | revoke`: API tokens, whose secrets are shown once and never stored."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from typing import Any

SCOPE_HELP = "events:write, history:read, dashboards:read or admin; repeat or list several"


def _settings(args: argparse.Namespace) -> Any:
    from services.composition import settings_for

    return settings_for(args)


def _expiry(args: argparse.Namespace) -> datetime | None:
    from services.auth import TokenError, parse_duration

    if args.expires_in:
        return datetime.now(UTC) + parse_duration(args.expires_in)
    if args.expires:
        try:
            moment = datetime.fromisoformat(args.expires)
        except ValueError as error:
            raise TokenError(f"--expires {args.expires!r} is not an ISO 8601 date-time") from error
        if moment.tzinfo is None:
            raise TokenError("--expires needs a UTC offset, e.g. 2027-01-01T00:00:00+00:00")
        return moment
    return None


def cmd_token_issue(args: argparse.Namespace) -> int:
    from services.auth import issue_token
    from services.db import connect

    settings = _settings(args)
    try:
        expires_at = _expiry(args)
        with connect(settings.require_database_url(), autocommit=True) as conn:
            token = issue_token(conn, settings.db_schema, args.name, args.scope, expires_at, args.person)
    except ValueError as error:
        print(f"verkosto: {error}", file=sys.stderr)
        return 2
    print(token)  # alone on standard output, so `TOKEN=$(verkosto token issue …)` works
    if expires_at is not None:
        print(f"expires at {expires_at.isoformat(timespec='seconds')}", file=sys.stderr)
    return 0


def _when(moment: datetime | None) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if moment is not None else "—"


def cmd_token_list(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.table import Table

    from services.auth import list_tokens
    from services.db import connect

    settings = _settings(args)
    with connect(settings.require_database_url(), autocommit=True) as conn:
        now = conn.execute("SELECT now() AS now").fetchone()["now"]  # the clock expiry is judged by
        tokens = list_tokens(conn, settings.db_schema)
    if args.active:
        tokens = [token for token in tokens if token.status(now) == "active"]
    if args.json:
        print(json.dumps([token.as_json(now) for token in tokens], indent=2))
        return 0
    table = Table(title="API tokens" + (" (active)" if args.active else ""))
    for column in ("id", "name", "person", "scopes", "status", "created", "expires", "last used", "revoked"):
        table.add_column(column, justify="right" if column == "id" else "left")
    for token in tokens:
        table.add_row(
            str(token.id),
            token.name,
            token.person or "—",
            " ".join(token.scopes),
            token.status(now),
            _when(token.created_at),
            _when(token.expires_at),
            _when(token.last_used_at),
            _when(token.revoked_at),
        )
    Console().print(table)
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    from services.auth import TokenError, revoke_token
    from services.db import connect

    settings = _settings(args)
    with connect(settings.require_database_url(), autocommit=True) as conn:
        try:
            token, revoked = revoke_token(conn, settings.db_schema, args.token)
        except TokenError as error:
            print(f"verkosto: {error}", file=sys.stderr)
            return 2
    if revoked:
        print(f"revoked token {token.id} ({token.name})")
        return 0
    print(f"token {token.id} ({token.name}) was already revoked at {_when(token.revoked_at)}")
    return 0


def register(sub: Any) -> None:
    """Adds `token` and its subcommands to the `verkosto` parser's subcommands."""
    token = sub.add_parser("token", help="manage API tokens")
    token_sub = token.add_subparsers(dest="token_command", required=True)

    issue = token_sub.add_parser("issue", help="print a new token (only its hash is stored)")
    issue.add_argument("--name", required=True, help="the principal recorded as actor")
    # extend: `--scope a --scope b` and `--scope a b` both give both scopes.
    issue.add_argument("--scope", action="extend", nargs="+", required=True, help=SCOPE_HELP)
    issue.add_argument("--person", help="the person it belongs to (a steward): `steward=me` in filters means them")
    expiry = issue.add_mutually_exclusive_group()
    expiry.add_argument("--expires-in", help="lifetime: 90s, 15m, 12h, 30d or 2w (default: never expires)")
    expiry.add_argument("--expires", help="expiry as ISO 8601 with a UTC offset")
    issue.set_defaults(func=cmd_token_issue)

    listing = token_sub.add_parser("list", help="every token's name, id, scopes and times (never the secret)")
    listing.add_argument("--json", action="store_true", help="JSON instead of a table")
    listing.add_argument("--active", action="store_true", help="only tokens neither revoked nor expired")
    listing.set_defaults(func=cmd_token_list)

    revoke = token_sub.add_parser("revoke", help="revoke a token at once, by id or by its unique name")
    revoke.add_argument("token", metavar="ID_OR_NAME")
    revoke.set_defaults(func=cmd_token_revoke)

    for command in (issue, listing, revoke):
        command.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
