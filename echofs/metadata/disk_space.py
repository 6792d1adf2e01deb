"""The free space the SQLite metadata file's disk keeps back.

Every delete is a write first: SQLite appends it to its WAL before a byte is
freed. On a disk filled to the last byte a delete fails ("database or disk
is full") and space cannot be freed through the API at all. So uploads, the
only writes that grow the disk without bound, are refused (507) once the
metadata disk is down to its reserve; deletes go on into it. A PostgreSQL
store is on another machine's disk and keeps its own margins: no check.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncEngine

from echofs.core.space import SpaceReserve, SpaceState
from echofs.disk_space import check_room, measure


class MetadataDisk:
    def __init__(self, path: Path | None, reserve: SpaceReserve) -> None:
        """``path``: the SQLite file (None: nothing local to watch)."""
        self.path = path
        self.reserve = reserve

    @classmethod
    def of(cls, engine: AsyncEngine, reserve: SpaceReserve) -> MetadataDisk:
        database = engine.url.database
        local = engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
        return cls(Path(str(database)) if local else None, reserve)

    def check(self) -> None:
        """Raise InsufficientStorage if the metadata disk is down to its reserve."""
        if self.path is not None:
            check_room(self.path.parent, self.reserve, 0, "the metadata disk")

    def state(self) -> SpaceState:
        if self.path is None:
            return SpaceState.UNKNOWN
        return measure(self.path.parent).state(self.reserve)
