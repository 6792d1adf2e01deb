"""Which version a read gets, and its manifest, through the manifest cache.

The database always decides what is current — the one query a read makes
anyway, to find the file and check its owner. The cache only saves reading
the *manifest* of that version, and an entry is used only if it has the very
number and BLAKE3 the database just named. Replicas always come fresh from
the database (copies move; a cached list would send reads to dead workers).
So a cache that missed an invalidation, or Redis away, costs a database read,
never a stale answer: a ``strong`` read after an acknowledged write through
any master sees that write.
"""

from __future__ import annotations

import dataclasses

from echofs.cache.base import Cache
from echofs.core.manifest import FileRecord, VersionRecord
from echofs.metadata.repository import MetadataRepository


class ManifestReader:
    def __init__(self, repo: MetadataRepository, cache: Cache) -> None:
        self.repo = repo
        self.cache = cache
        self.hits = 0
        self.misses = 0

    async def version(self, record: FileRecord, number: int | None = None) -> VersionRecord:
        """Version ``number`` of the file (default: its current one), with
        its manifest and replicas. ``record`` was just read from the database."""
        if self.repo.memo is not None:
            # This master is the store's only writer: the repository's memo
            # is exact, and it holds the replicas too.
            return await self.repo.get_version(record.file_id, number, record.owner)
        current = number is None or number == record.current_version
        if current:
            cached = await self.cache.get_manifest(record.file_id, record.current_version)
            if cached is not None and (cached.blake3, cached.size) == (record.blake3,
                                                                       record.size):
                self.hits += 1
                return await self._with_replicas(cached)
        self.misses += 1
        version = await self.repo.get_version(record.file_id, number, record.owner)
        if current and version.version == record.current_version:
            await self.cache.put_manifest(version)
        return version

    async def _with_replicas(self, version: VersionRecord) -> VersionRecord:
        if not version.chunks:
            return version
        replicas = await self.repo.replicas_of([c.chunk_id for c in version.chunks])
        return dataclasses.replace(version, chunks=tuple(
            dataclasses.replace(c, replicas=replicas.get(c.chunk_id, ()))
            for c in version.chunks))

    async def invalidate(self, file_id: str) -> None:
        """The file has a new version or lost some: every master forgets it."""
        await self.cache.invalidate(file_id)
