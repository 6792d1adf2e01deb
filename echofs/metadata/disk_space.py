"""The free space the SQLite metadata file's disk keeps back.

Every delete is a write first: SQLite appends it to its WAL before a byte is
freed. On a disk filled to the last byte a delete fails ("database or disk
is full") and space cannot be freed through the API at all. So uploads, the
only writes that grow the disk without bound, are refused (507) once the
metadata disk is down to its reserve; deletes go on into it. A PostgreSQL
store is on another machine's disk and keeps its own margins: no check.
"""

from __future__ import annotations

import time
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from echofs.core.space import SpaceReserve, SpaceState
from echofs.disk_space import check_room, measure

# A disk found with room is measured again only after this long: a statvfs
# per chunk claim was ~2.5% of a busy node's event loop, and what can be
# written in this time is a small part of the reserve (64 MiB by default). A
# disk found short is measured on every check, so room made shows at once.
_RECHECK_AFTER = 0.02


class MetadataDisk:
    def __init__(self, path: Path | None, reserve: SpaceReserve) -> None:
        """``path``: the SQLite file (None: nothing local to watch)."""
        self.path = path
        self.reserve = reserve
        self._roomy_until = 0.0

    @classmethod
    def of(cls, engine: AsyncEngine | None, reserve: SpaceReserve) -> MetadataDisk:
        """The disk of an SQLite file; nothing to watch for a server
        database (PostgreSQL) or a service (DynamoDB, ``engine`` None)."""
        if engine is None:
            return cls(None, reserve)
        database = engine.url.database
        local = engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
        return cls(Path(str(database)) if local else None, reserve)

    def check(self) -> None:
        """Raise InsufficientStorage if the metadata disk is down to its reserve."""
        if self.path is None:
            return
        now = time.monotonic()
        if now < self._roomy_until:
            return
        check_room(self.path.parent, self.reserve, 0, "the metadata disk")
        self._roomy_until = now + _RECHECK_AFTER

    def state(self) -> SpaceState:
        if self.path is None:
            return SpaceState.UNKNOWN
        return measure(self.path.parent).state(self.reserve)
