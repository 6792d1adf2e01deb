"""S3's metadata: buckets, and what S3 keeps per version of an object.

Shares its repository's sessions and SQLite writer lock (``reading`` and
``writing_unmemoized``): no memoized answer reads these tables.

A bucket's objects are its owner's files named ``<bucket>/<key>``; this
module knows the names only, the files themselves are the repository's.
Per-version object metadata (the MD5 that is S3's ETag, content headers,
``x-amz-meta-*``) is written by the commit of its version, in the same
transaction (``CommitRequest.object_meta``), and goes with it (retention,
deletes); this module reads it. A version without it (a file written
through the REST API) is served with an ETag derived from its BLAKE3 that no
client mistakes for an MD5 (see ``echofs.s3.objects``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.exc import IntegrityError

from echofs.metadata.models import BucketRow, FileRow, ObjectMetaRow
from echofs.metadata.records import ObjectMeta
from echofs.metadata.repository import MetadataRepository

__all__ = ["BucketRecord", "BucketTaken", "BucketsRepository", "ObjectMeta"]


@dataclass(frozen=True, slots=True)
class BucketRecord:
    name: str
    owner: str
    created_at: float


class BucketTaken(Exception):
    """The name is a bucket already; ``owner`` is whose."""

    def __init__(self, owner: str) -> None:
        super().__init__(owner)
        self.owner = owner


class BucketsRepository:
    def __init__(self, repo: MetadataRepository) -> None:
        self._repo = repo

    # -- buckets -----------------------------------------------------------------------

    async def create(self, name: str, owner: str) -> BucketRecord:
        """Create a bucket; :class:`BucketTaken` if the name is in use."""
        row = BucketRow(name=name, owner=owner, created_at=time.time())
        try:
            async with self._repo.writing_unmemoized() as session:
                session.add(row)
        except IntegrityError:
            found = await self.get(name)
            raise BucketTaken(found.owner if found else "") from None
        return BucketRecord(row.name, row.owner, row.created_at)

    async def get(self, name: str) -> BucketRecord | None:
        async with self._repo.reading() as session:
            row = await session.get(BucketRow, name)
        return BucketRecord(row.name, row.owner, row.created_at) if row else None

    async def owned_by(self, owner: str | None) -> list[BucketRecord]:
        """An owner's buckets by name (``None``: everyone's)."""
        query = select(BucketRow).order_by(BucketRow.name)
        if owner is not None:
            query = query.where(BucketRow.owner == owner)
        async with self._repo.reading() as session:
            rows = (await session.execute(query)).scalars().all()
        return [BucketRecord(r.name, r.owner, r.created_at) for r in rows]

    async def is_empty(self, name: str, owner: str) -> bool:
        prefix = f"{name}/"
        async with self._repo.reading() as session:
            found = (await session.execute(
                select(FileRow.id).where(FileRow.owner == owner,
                                         func.substr(FileRow.path, 1, len(prefix)) == prefix)
                .limit(1))).first()
        return found is None

    async def delete(self, name: str, owner: str) -> bool:
        """Remove an empty bucket; False if it held objects (or was gone).

        Emptiness is checked in the deleting transaction, so an object
        committed before it is seen; one committed after is the owner's file
        ``<bucket>/<key>`` still, reachable again if the bucket is re-created."""
        prefix = f"{name}/"
        async with self._repo.writing_unmemoized() as session:
            found = (await session.execute(
                select(FileRow.id).where(FileRow.owner == owner,
                                         func.substr(FileRow.path, 1, len(prefix)) == prefix)
                .limit(1))).first()
            if found is not None:
                return False
            done = await session.execute(
                delete(BucketRow).where(BucketRow.name == name, BucketRow.owner == owner))
            return bool(done.rowcount)

    # -- per-version object metadata -----------------------------------------------------

    async def meta(self, file_id: str, version: int) -> ObjectMeta | None:
        async with self._repo.reading() as session:
            row = await session.get(ObjectMetaRow, (file_id, version))
        return _meta(row) if row else None

    async def metas(self, versions: Sequence[tuple[str, int]]
                    ) -> dict[tuple[str, int], ObjectMeta]:
        """The metadata of many versions at once (a listing page)."""
        if not versions:
            return {}
        async with self._repo.reading() as session:
            rows = (await session.execute(select(ObjectMetaRow).where(
                tuple_(ObjectMetaRow.file_id, ObjectMetaRow.version).in_(list(versions)))
            )).scalars().all()
        return {(r.file_id, r.version): _meta(r) for r in rows}


def _meta(row: ObjectMetaRow) -> ObjectMeta:
    return ObjectMeta(row.etag, json.loads(row.headers), json.loads(row.user_meta))
