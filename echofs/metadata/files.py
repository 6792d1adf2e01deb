"""Files and their versions as readers see them: find, get, list, delete.

The hot reads (a file by id or by name, a version with its manifest) are
``@memoized`` (see memoized and read_memo); a delete invalidates the file it
removes, by id and by name, and nothing else.
"""

from __future__ import annotations

import time

from sqlalchemy import Select, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from echofs.core.consistency import Mode
from echofs.core.errors import NotFound
from echofs.core.manifest import ChunkRef, FileRecord, VersionRecord
from echofs.metadata import sql
from echofs.metadata.memoized import (
    Tag,
    file_id_tags,
    file_tag,
    memoized,
    path_tag,
    path_tags,
)
from echofs.metadata.models import ChunkRow, FileRow, VersionRow
from echofs.metadata.records import StoreTotals, file_record, version_record
from echofs.metadata.sql import SessionSql
from echofs.metadata.transactions import Transactions, retried


async def delete_versions(session: AsyncSession, version_ids: list[int]) -> None:
    """See ``sql.delete_versions``."""
    await session.run_sync(lambda sync: sql.delete_versions(SessionSql(sync), version_ids))


def _with_current_version() -> Select[tuple[FileRow, VersionRow]]:
    """Each file's row with the row of its current version."""
    return select(FileRow, VersionRow).join(
        VersionRow, (VersionRow.file_id == FileRow.id)
        & (VersionRow.version == FileRow.current_version))


_FILE_WITH_VERSION = (
    "SELECT f.id, f.owner, f.path, f.current_version, v.size, v.blake3, v.mode, "
    "f.created_at, f.updated_at, v.id, v.chunk_count, v.replicas_acked, v.created_at "
    "FROM files f JOIN versions v ON v.file_id = f.id AND v.version = f.current_version "
)


class FileQueries(Transactions):
    # The hot reads are plain SQL (see sql): on the sole master's SQLite
    # they run on the loop in microseconds, where the ORM took a millisecond.

    @memoized(file_id_tags)
    async def get_file(self, file_id: str, owner: str | None = None) -> FileRecord:
        row = await self._read_sql(lambda db: _file_with_version(db, file_id, owner))
        return _file_record(row)

    @memoized(path_tags)
    async def find_file(self, owner: str, path: str) -> FileRecord:
        rows = await self._read_sql(lambda db: db.rows(
            _FILE_WITH_VERSION + "WHERE f.owner = ? AND f.path = ?", (owner, path)))
        if not rows:
            raise NotFound(f"no file named {path!r}")
        return _file_record(rows[0])

    @memoized(file_id_tags)
    async def get_version(
        self, file_id: str, version: int | None = None, owner: str | None = None
    ) -> VersionRecord:
        """A version (default: the current one) with its manifest and replicas."""
        return await self._read_sql(lambda db: _version(db, file_id, version, owner))

    async def list_versions(self, file_id: str, owner: str | None = None) -> list[VersionRecord]:
        await self._read_sql(lambda db: _file_with_version(db, file_id, owner))
        async with self._read() as session:
            rows = (
                (
                    await session.execute(
                        select(VersionRow)
                        .where(VersionRow.file_id == file_id)
                        .order_by(VersionRow.version.desc())
                    )
                )
                .scalars()
                .all()
            )
        return [version_record(file_id, row) for row in rows]

    async def list_files(
        self,
        *,
        owner: str | None,
        prefix: str = "",
        after: tuple[str, str] | None = None,
        limit: int = 100,
    ) -> list[FileRecord]:
        """Files in (path, owner) order; ``after`` is the last (path, owner) seen."""
        query = (
            _with_current_version()
            .order_by(FileRow.path, FileRow.owner)
            .limit(limit)
        )
        if owner is not None:
            query = query.where(FileRow.owner == owner)
        if prefix:
            # substr, not LIKE: LIKE is case-insensitive on SQLite and treats
            # '%' and '_' in names as wildcards.
            query = query.where(func.substr(FileRow.path, 1, len(prefix)) == prefix)
        if after is not None:
            path, owner_seen = after
            query = query.where(
                or_(FileRow.path > path, and_(FileRow.path == path, FileRow.owner > owner_seen))
            )
        async with self._read() as session:
            rows = (await session.execute(query)).all()
        return [file_record(f, v) for f, v in rows]

    @retried
    async def delete_file(
        self, file_id: str, owner: str | None = None, version: int | None = None
    ) -> int:
        """Delete a file (or one version of it); returns how many versions went."""
        # Known once the row is locked: the file, by id and by name.
        changes: list[Tag] = []
        async with self._write(invalidates=changes) as session:
            query = select(FileRow).where(FileRow.id == file_id).with_for_update()
            if owner is not None:
                query = query.where(FileRow.owner == owner)
            file_row = (await session.execute(query)).scalar_one_or_none()
            if file_row is None:
                raise NotFound(f"no file with id {file_id!r}")
            changes += [file_tag(file_row.id), path_tag(file_row.owner, file_row.path)]
            versions = dict(
                (
                    await session.execute(
                        select(VersionRow.version, VersionRow.id).where(
                            VersionRow.file_id == file_id
                        )
                    )
                ).all()
            )
            if version is not None:
                if version not in versions:
                    raise NotFound(f"file {file_id!r} has no version {version}")
                doomed = [versions.pop(version)]
            else:
                doomed, versions = list(versions.values()), {}
            await delete_versions(session, doomed)
            if versions:
                file_row.current_version = max(versions)
                file_row.updated_at = time.time()
            else:
                await session.delete(file_row)
        return len(doomed)

    async def totals(self) -> StoreTotals:
        """How much the store holds (operators' and tests' view of it)."""
        async with self._read() as session:
            files = (await session.execute(select(func.count(FileRow.id)))).scalar_one()
            versions = (await session.execute(select(func.count(VersionRow.id)))).scalar_one()
            chunks, stored = (
                await session.execute(
                    select(
                        func.count(ChunkRow.id), func.coalesce(func.sum(ChunkRow.stored_size), 0)
                    )
                )
            ).one()
        return StoreTotals(int(files), int(versions), int(chunks), int(stored))


def _file_record(row: sql.Row) -> FileRecord:
    return FileRecord(file_id=row[0], owner=row[1], path=row[2], current_version=row[3],
                      size=row[4], blake3=row[5], mode=Mode(row[6]), created_at=row[7],
                      updated_at=row[8])


def _file_with_version(db: sql.Sql, file_id: str, owner: str | None) -> sql.Row:
    query, params = _FILE_WITH_VERSION + "WHERE f.id = ?", [file_id]
    if owner is not None:
        query, params = query + " AND f.owner = ?", [file_id, owner]
    rows = db.rows(query, params)
    if not rows:
        raise NotFound(f"no file with id {file_id!r}")
    return rows[0]


def _version(db: sql.Sql, file_id: str, number: int | None,
             owner: str | None) -> VersionRecord:
    row = _file_with_version(db, file_id, owner)
    version_id, fields = row[9], (row[3], row[4], row[5], row[10], row[6], row[11], row[12])
    if number is not None and number != row[3]:
        found = db.rows("SELECT id, version, size, blake3, chunk_count, mode, replicas_acked, "
                        "created_at FROM versions WHERE file_id = ? AND version = ?",
                        (file_id, number))
        if not found:
            raise NotFound(f"file {file_id!r} has no version {number}")
        version_id, fields = found[0][0], found[0][1:]
    manifest = db.rows(
        'SELECT vc.seq, vc.chunk_id, vc."offset", vc.size, c.compressed FROM version_chunks vc '
        "JOIN chunks c ON c.id = vc.chunk_id WHERE vc.version_id = ? ORDER BY vc.seq",
        (version_id,))
    replicas = sql.replicas_of(db, list(dict.fromkeys(m[1] for m in manifest)))
    version, size, blake3, chunk_count, mode, replicas_acked, created_at = fields
    return VersionRecord(
        file_id=file_id, version=version, size=size, blake3=blake3, chunk_count=chunk_count,
        mode=Mode(mode), replicas_acked=replicas_acked, created_at=created_at,
        chunks=tuple(ChunkRef(seq, chunk_id, offset, chunk_size, bool(compressed),
                              tuple(replicas.get(chunk_id, ())))
                     for seq, chunk_id, offset, chunk_size, compressed in manifest))
