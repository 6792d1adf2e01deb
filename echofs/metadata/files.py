"""Files and their versions as readers see them: find, get, list, delete.

The hot reads (a file by id or by name, a version with its manifest) are
``@memoized`` (see memoized and read_memo); a delete invalidates the file it
removes, by id and by name, and nothing else.
"""

from __future__ import annotations

import time

from sqlalchemy import Select, and_, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from echofs.core.errors import NotFound
from echofs.core.manifest import ChunkRef, FileRecord, VersionRecord
from echofs.metadata.memoized import (
    Tag,
    file_id_tags,
    file_tag,
    memoized,
    path_tag,
    path_tags,
)
from echofs.metadata.models import ChunkRow, FileRow, VersionChunkRow, VersionRow
from echofs.metadata.records import StoreTotals, file_record, version_record
from echofs.metadata.transactions import Transactions, retried


async def delete_versions(session: AsyncSession, version_ids: list[int]) -> None:
    """Remove these versions and their manifests (their chunks stay, for the
    collector to find unreferenced)."""
    await session.execute(
        delete(VersionChunkRow).where(VersionChunkRow.version_id.in_(version_ids))
    )
    await session.execute(delete(VersionRow).where(VersionRow.id.in_(version_ids)))


def _with_current_version() -> Select[tuple[FileRow, VersionRow]]:
    """Each file's row with the row of its current version."""
    return select(FileRow, VersionRow).join(
        VersionRow, (VersionRow.file_id == FileRow.id)
        & (VersionRow.version == FileRow.current_version))


class FileQueries(Transactions):
    @memoized(file_id_tags)
    async def get_file(self, file_id: str, owner: str | None = None) -> FileRecord:
        async with self._read() as session:
            row = await self._file_with_version(session, file_id, owner)
        return file_record(*row)

    @memoized(path_tags)
    async def find_file(self, owner: str, path: str) -> FileRecord:
        async with self._read() as session:
            row = (await session.execute(
                _with_current_version().where(FileRow.owner == owner, FileRow.path == path)
            )).first()
        if row is None:
            raise NotFound(f"no file named {path!r}")
        return file_record(row[0], row[1])

    @memoized(file_id_tags)
    async def get_version(
        self, file_id: str, version: int | None = None, owner: str | None = None
    ) -> VersionRecord:
        """A version (default: the current one) with its manifest and replicas."""
        async with self._read() as session:
            file_row, current = await self._file_with_version(session, file_id, owner)
            row = current
            if version is not None and version != current.version:
                row = (
                    await session.execute(
                        select(VersionRow).where(
                            VersionRow.file_id == file_id, VersionRow.version == version
                        )
                    )
                ).scalar_one_or_none()
                if row is None:
                    raise NotFound(f"file {file_id!r} has no version {version}")
            manifest = (
                await session.execute(
                    select(VersionChunkRow, ChunkRow.compressed)
                    .join(ChunkRow, ChunkRow.id == VersionChunkRow.chunk_id)
                    .where(VersionChunkRow.version_id == row.id)
                    .order_by(VersionChunkRow.seq)
                )
            ).all()
            ids = list(dict.fromkeys(vc.chunk_id for vc, _ in manifest))
            replicas = await self._replicas_of(session, ids)
        chunks = tuple(
            ChunkRef(
                vc.seq,
                vc.chunk_id,
                vc.offset,
                vc.size,
                compressed,
                tuple(replicas.get(vc.chunk_id, ())),
            )
            for vc, compressed in manifest
        )
        return version_record(file_row.id, row, chunks)

    async def list_versions(self, file_id: str, owner: str | None = None) -> list[VersionRecord]:
        async with self._read() as session:
            await self._file_with_version(session, file_id, owner)
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

    async def _file_with_version(
        self, session: AsyncSession, file_id: str, owner: str | None
    ) -> tuple[FileRow, VersionRow]:
        query = (
            _with_current_version()
            .where(FileRow.id == file_id)
        )
        if owner is not None:
            query = query.where(FileRow.owner == owner)
        row = (await session.execute(query)).first()
        if row is None:
            raise NotFound(f"no file with id {file_id!r}")
        return row[0], row[1]
