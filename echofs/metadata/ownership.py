"""One master per SQLite metadata file, enforced.

SQLite is the embedded, single-master backend (several masters share
PostgreSQL). A master takes an exclusive ``flock`` on a file beside the
database for as long as it runs; a second master pointed at the same file is
refused at startup with a clear message instead of silently sharing it. The
lock is what lets the sole master keep read answers in memory
(``echofs.metadata.read_memo``): nobody else can write behind its back. The
kernel drops the lock when the process dies, however it dies.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from sqlalchemy.engine import make_url


class MetadataInUse(Exception):
    pass


def sqlite_path(url: str) -> Path | None:
    """The database file of an SQLite URL, None for other databases (or an
    in-memory SQLite, which no other process can open)."""
    parsed = make_url(url)
    if not parsed.drivername.startswith("sqlite") or not parsed.database:
        return None
    if parsed.database == ":memory:":
        return None
    return Path(parsed.database)


class SoleMasterLock:
    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(database.name + ".master-lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise MetadataInUse(
                f"the metadata database {self.database} is in use by another "
                f"master (pid {holder}); SQLite serves one master — use PostgreSQL "
                "(DATABASE_URL) to run several"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the lock
            self._fd = None
