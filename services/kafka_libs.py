"""Apache Kafka's jars, from Maven Central (deploy/kafka/pom.xml), copied once into a cache
by ``kafka_libs()``; no binary distribution is downloaded. Nothing happens at import time.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

log = logging.getLogger(__name__)

KAFKA_VERSION = "4.4.0"
_REPO = Path(__file__).resolve().parent.parent
_POM = _REPO / "deploy" / "kafka" / "pom.xml"
_COMPLETE = ".complete"  # written last, with the pom's digest: the copy is whole


class KafkaUnavailable(RuntimeError):
    """Java or Maven is missing, or the jars could not be fetched."""


def require(tool: str) -> str:
    found = shutil.which(tool)
    if not found:
        raise KafkaUnavailable(
            f"`{tool}` is not on PATH: Apache Kafka needs Java 17+ (and Maven to fetch its "
            "jars once). Run `make kafka`, or `apt-get install default-jre-headless maven`."
        )
    return found


def _default_libs() -> Path:
    configured = os.environ.get("VERKOSTO_KAFKA_LIBS")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "verkosto" / f"kafka-{KAFKA_VERSION}" / "libs"


def _pom_digest(pom: Path) -> str:
    return hashlib.sha256(pom.read_bytes()).hexdigest()


def _complete(libs: Path, digest: str | None) -> bool:
    marker = libs / _COMPLETE
    if not marker.is_file() or not any(libs.glob("kafka_2.13-*.jar")):
        return False
    return digest is None or marker.read_text().strip() == digest


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock on ``path`` (created): one download at a time across processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def kafka_libs(cache_dir: Path | None = None, *, timeout_s: float = 900.0) -> Path:
    """A directory holding every jar ``kafka.Kafka`` and the storage tool need.

    The first call copies them from Maven Central (through ~/.m2) with deploy/kafka/pom.xml;
    later calls, from any process, find them in the cache. ``cache_dir`` (or the environment
    variable VERKOSTO_KAFKA_LIBS) names the directory; by default it is
    ``~/.cache/verkosto/kafka-4.4.0/libs``. A lock file beside it keeps two test sessions from
    both downloading; the copy goes to a temporary directory renamed into place when whole,
    with a marker naming the pom's digest (a changed pom fetches again). A directory of Kafka
    jars without that marker (e.g. VERKOSTO_KAFKA_LIBS=/opt/kafka/libs) is used as it is.
    """
    libs = Path(cache_dir).expanduser() if cache_dir is not None else _default_libs()
    pom = Path(os.environ.get("VERKOSTO_KAFKA_POM", _POM))
    digest = _pom_digest(pom) if pom.is_file() else None
    if _complete(libs, digest):
        return libs
    if not (libs / _COMPLETE).exists() and any(libs.glob("kafka_2.13-*.jar")):
        # Jars we did not fetch (a distribution's libs/, say): used as they are, never replaced.
        return libs
    if digest is None:
        if _complete(libs, None):  # installed without the repository: use what is cached
            return libs
        raise KafkaUnavailable(f"{pom} is missing, and {libs} holds no Kafka jars")
    with _locked(libs.parent / f".{libs.name}.lock"):
        if _complete(libs, digest):  # another process fetched them while we waited
            return libs
        mvn = require("mvn")
        require("java")  # Maven runs on it, and so will the broker
        staging = libs.parent / f".{libs.name}.partial-{os.getpid()}"
        shutil.rmtree(staging, ignore_errors=True)
        started = time.monotonic()
        log.info("fetching Apache Kafka %s jars into %s (once)", KAFKA_VERSION, libs)
        result = subprocess.run(
            [
                mvn,
                "-q",
                "-B",
                "-f",
                str(pom),
                "dependency:copy-dependencies",
                "-DincludeScope=runtime",
                f"-DoutputDirectory={staging}",
            ],
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
        if result.returncode != 0 or not any(staging.glob("kafka_2.13-*.jar")):
            shutil.rmtree(staging, ignore_errors=True)
            output = (result.stdout + result.stderr).strip()[-4000:]
            raise KafkaUnavailable(f"Maven could not fetch the Kafka jars (exit {result.returncode}):\n{output}")
        (staging / _COMPLETE).write_text(digest + "\n")
        if libs.exists():  # an older, incomplete or stale copy
            old = libs.parent / f".{libs.name}.old-{os.getpid()}"
            libs.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        staging.rename(libs)
        log.info("Kafka jars fetched in %.1fs", time.monotonic() - started)
        return libs
