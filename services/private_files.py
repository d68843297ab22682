"""Files holding secrets (the development token, endpoints with the database URL) are
readable by their owner only from the moment they exist, and replaced atomically."""

from __future__ import annotations

import os
from pathlib import Path

PRIVATE_FILE = 0o600
PRIVATE_DIR = 0o700


def private_dir(path: Path) -> Path:
    """Creates the directory if needed and makes it the owner's alone (0700)."""
    path.mkdir(mode=PRIVATE_DIR, parents=True, exist_ok=True)
    path.chmod(PRIVATE_DIR)  # an existing directory keeps its mode through mkdir
    return path


def write_private(path: Path, text: str) -> None:
    """Writes ``text`` to ``path`` with mode 0600, never visible half-written or to others.

    The new file is created 0600 under a temporary name (O_EXCL: never through a file or
    link someone else placed there), synced, then renamed over ``path``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.unlink(missing_ok=True)  # left over from a crash of this same pid
    fd = os.open(temporary, os.O_CREAT | os.O_EXCL | os.O_WRONLY, PRIVATE_FILE)
    try:
        with os.fdopen(fd, "w") as file:
            os.fchmod(file.fileno(), PRIVATE_FILE)  # a umask can only have removed bits; be exact
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
