"""`verkosto up`: start the infrastructure (embedded unless configured), then every
component as a child process; restart a child that dies, and an embedded PostgreSQL or
broker that dies; stop all in order on Ctrl-C.

Children get SIGTERM from the kernel if the supervisor itself dies (``PR_SET_PDEATHSIG``,
set in the child before it runs), so nothing is left orphaned, and a component started
by hand with the same environment is never stopped by it."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from services.bus import ensure_topics
from services.embedded import (
    EmbeddedKafka,
    EmbeddedPostgres,
    _die_with_parent,
    become_subreaper,
    free_port,
    reap_orphans,
    wait_for_port,
)
from services.private_files import private_dir, write_private
from services.resilience import install_repeat_filter
from services.settings import Settings

log = logging.getLogger(__name__)
COMPONENTS = ("api", "ingest", "relay", "projector")
# Their consumer groups, producers and topic ids belong to one broker: a new (empty)
# broker means starting them afresh, which also makes the relay refill the events topic.
KAFKA_CLIENTS = ("ingest", "relay", "projector")


@dataclass
class Child:
    name: str
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    due: float | None = None  # when a child that died is started again (backoff)

    def start(self) -> None:
        log_file = open(self.log_path, "ab")  # noqa: SIM115  (the child owns it)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.cli", "run", self.name],
            env=self.env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # the supervisor decides the order of stopping
            preexec_fn=_die_with_parent,  # noqa: PLW1509  (one prctl call, libc loaded before fork)
        )
        log_file.close()
        self.due = None

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def bootstrap(settings: Settings, console: Console) -> str:
    """Migrations, topics and the development token; returns the token."""
    from services.auth import issue_token
    from services.db import connect, migrate

    database_url = settings.require_database_url()
    migrate(database_url, settings.db_schema)
    ensure_topics(settings)
    token_file = private_dir(settings.data_dir) / "dev-token"
    with connect(database_url, autocommit=True) as conn:
        if token_file.exists():
            from services.auth import authenticate

            token = token_file.read_text().strip()
            if authenticate(conn, settings.db_schema, token) is not None:
                token_file.chmod(0o600)  # one an older version left readable to others
                return token
        token = issue_token(conn, settings.db_schema, "developer", ["admin"])
    write_private(token_file, token + "\n")  # 0600 from its first byte
    return token


def up(settings: Settings, console: Console | None = None, demo: bool = False) -> int:
    console = console or Console()
    data_dir = settings.data_dir.resolve()
    private_dir(data_dir)  # 0700: it holds the token, the endpoints and the database
    logs = data_dir / "logs"
    logs.mkdir(exist_ok=True)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    become_subreaper()  # the postmaster, once pg_ctl exits, stays in our family
    install_repeat_filter()

    postgres = EmbeddedPostgres(data_dir / "pg") if not settings.database_url else None
    kafka = EmbeddedKafka(log_path=logs / "tansu.log") if not settings.kafka_bootstrap else None
    children: list[Child] = []
    try:
        if postgres:
            settings.database_url = postgres.start()
        if kafka:
            settings.kafka_bootstrap = kafka.start()
        if settings.api_port == 0:
            settings.api_port = free_port()
        token = bootstrap(settings, console)
        env = {
            **os.environ,
            "VERKOSTO_DATABASE_URL": settings.require_database_url(),
            "VERKOSTO_KAFKA_BOOTSTRAP": settings.require_kafka_bootstrap(),
            "VERKOSTO_API_PORT": str(settings.api_port),
            "VERKOSTO_DATA_DIR": str(data_dir),
        }
        env.pop("VERKOSTO_PARENT_PID", None)  # older versions tied children to us with it
        children = [Child(name, env, logs / f"{name}.log") for name in COMPONENTS]
        for child in children:
            child.start()
        wait_for_port(settings.api_port, timeout_s=60)
        api_url = f"http://{settings.api_host}:{settings.api_port}"
        endpoints = {
            "api_url": api_url,
            "kafka_bootstrap": settings.kafka_bootstrap,
            "database_url": settings.database_url,
            "embedded": {"postgres": postgres is not None, "kafka": kafka is not None},
            "pid": os.getpid(),
        }
        write_private(data_dir / "endpoints.json", json.dumps(endpoints, indent=2) + "\n")
        if demo:
            load_demo_if_empty(settings, console)
        show(console, endpoints, token, data_dir)
        while not stop.wait(0.5):
            keep_infrastructure(settings, postgres, kafka, children, console)
            for child in children:
                if child.process is not None and child.process.poll() is not None:
                    restart(child, console)
            keep = {c.process.pid for c in children if c.process is not None}
            if kafka and kafka.process is not None:
                keep.add(kafka.process.pid)
            reap_orphans(keep)
        console.print("[bold]Stopping…[/bold]")
        return 0
    finally:
        for child in reversed(children):
            child.stop()
        if kafka:
            kafka.stop()
        if postgres:
            postgres.stop()
        (data_dir / "endpoints.json").unlink(missing_ok=True)
        console.print("Stopped; data kept in", str(data_dir))


def load_demo_if_empty(settings: Settings, console: Console) -> None:
    from services.db import connect
    from services.demo import load

    with connect(settings.require_database_url()) as conn:
        row = conn.execute(f'SELECT count(*) AS n FROM "{settings.db_schema}".verkosto_events').fetchone()
    if row and row["n"]:
        return
    with console.status("Loading the demo organisation through Kafka…"):
        accepted, refused = load(settings)
    console.print(f"Demo loaded: {accepted} commands recorded, {refused} refused.")


def restart(child: Child, console: Console) -> None:
    """Starts a child that exited again, at once the first time and then with a growing
    pause (so a broken dependency does not spin the CPU); never blocks the watch loop."""
    now = time.monotonic()
    if child.due is None:
        child.restarts = [t for t in child.restarts if now - t < 60] + [now]
        code = child.process.returncode if child.process else None
        pause = min(30, 2 ** (len(child.restarts) - 1)) if len(child.restarts) > 1 else 0
        console.print(f"[yellow]{child.name} exited ({code}); restarting in {pause} s. See {child.log_path}[/yellow]")
        child.due = now + pause
    if now >= child.due:
        child.start()


def keep_infrastructure(
    settings: Settings, postgres: EmbeddedPostgres | None, kafka: EmbeddedKafka | None,
    children: list[Child], console: Console,
) -> None:
    """Starts an embedded PostgreSQL or broker that died, like any other child."""
    if postgres is not None and not postgres.alive():
        console.print("[yellow]PostgreSQL stopped; starting it again on the same data[/yellow]")
        log.warning("embedded PostgreSQL (pid %s) stopped; starting it again", postgres.pid())
        try:
            url = postgres.restart(timeout_s=20)
        except Exception as error:  # tried again on the next round
            console.print(f"[red]PostgreSQL did not start: {error}[/red]")
            return
        if url != settings.database_url:  # not expected: the socket directory is fixed
            console.print(f"[yellow]PostgreSQL moved to {url}; restarting the components[/yellow]")
            settings.database_url = url
            for child in children:
                child.env["VERKOSTO_DATABASE_URL"] = url
            restart_all(children, COMPONENTS)
        console.print("PostgreSQL is back")
    if kafka is not None and not kafka.alive():
        code = kafka.process.returncode if kafka.process is not None else None
        console.print(f"[yellow]The broker exited ({code}); starting an empty one on the same port[/yellow]")
        log.warning("embedded broker exited (%s); starting it again", code)
        # Its clients go first: none of them may reach the new broker with the old one's
        # group membership, producer id or offsets.
        clients = stop_all(children, KAFKA_CLIENTS)
        try:
            kafka.restart()
            ensure_topics(settings)
        except Exception as error:  # all of it tried again on the next round
            console.print(f"[red]The broker did not start: {error}[/red]")
            kafka.stop()
            return
        finally:
            for child in clients:
                child.start()
        console.print("The broker is back; the relay refills the events topic from the event store")


def stop_all(children: list[Child], names: tuple[str, ...]) -> list[Child]:
    chosen = [c for c in children if c.name in names]
    for child in chosen:  # all asked at once: each stops within a few seconds
        if child.alive():
            child.process.terminate()  # type: ignore[union-attr]
    for child in chosen:
        child.stop()
    return chosen


def restart_all(children: list[Child], names: tuple[str, ...]) -> None:
    for child in stop_all(children, names):
        child.start()


def show(console: Console, endpoints: dict[str, object], token: str, data_dir: Path) -> None:
    table = Table(title="Verkosto is up", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")
    table.add_row("API", str(endpoints["api_url"]))
    table.add_row("OpenAPI", f"{endpoints['api_url']}/docs")
    table.add_row("Kafka bootstrap", str(endpoints["kafka_bootstrap"]))
    table.add_row("PostgreSQL", str(endpoints["database_url"]))
    table.add_row("Development token", token)
    table.add_row("Data and logs", str(data_dir))
    console.print(table)
    console.print("Press Ctrl-C to stop.")
