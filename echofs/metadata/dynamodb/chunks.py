"""Claims, touches and where copies live (the SQL repository's
``echofs.metadata.chunks``).

A chunk is one item, ``C#<chunk_id>`` / ``CHUNK``: ``raw_size``,
``stored_size``, ``compressed``, ``state``, ``touched_at``, ``created_at``,
``refs`` and ``replicas`` (a map worker → stored at). Each copy is also an
item ``W#<worker>`` / ``<chunk_id>`` (``chunk_id``, ``worker_id``,
``stored_at``) so a worker's chunks are one Query.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from echofs.core.manifest import NewChunk
from echofs.core.vocabulary import ChunkState
from echofs.metadata.dynamodb.base import (
    CHUNKS,
    GC,
    LIVE,
    DynamoBase,
    chunk_key,
    each,
    gc_sort_key,
)
from echofs.metadata.dynamodb.connection import conditional_failed, decode, encode, value
from echofs.metadata.records import ChunkClaim


def worker_key(worker_id: str, chunk_id: str) -> tuple[str, str]:
    return f"W#{worker_id}", chunk_id


def replicas_in(item: dict[str, Any] | None) -> tuple[str, ...]:
    """The workers holding copies of a chunk item, in id order."""
    if not item:
        return ()
    return tuple(sorted(item.get("replicas") or {}))


class DynamoChunks(DynamoBase):
    # == claims, touches, replica readers and recording copies (dyncore) ===============
    # What uploads and commits need; the rest of the part follows below.

    async def claim_chunks(self, chunks: Sequence[NewChunk]) -> dict[str, ChunkClaim]:
        """Register chunks before their bytes go to workers.

        Creates missing items (unreferenced: in the collector's index, with
        the grace period starting now) and touches live ones, so the
        collector leaves them alone while the upload runs; reports where
        copies already exist (deduplication). A chunk the collector claimed
        is reported ``deleting`` and left as it is."""
        now = time.time()
        # The last description of a repeated id wins, as on SQL.
        unique = {c.chunk_id: c for c in chunks}
        if not unique:
            return {}
        found = await self.db.get_many(CHUNKS, [chunk_key(i) for i in unique])

        async def one(new: NewChunk) -> ChunkClaim:
            item = found.get(chunk_key(new.chunk_id))
            if item is None and await self._create_chunk(new, now):
                return ChunkClaim(new.chunk_id, ChunkState.LIVE, ())
            # Known (or created by another upload just now): touch it if live.
            touched = await self._touch(new.chunk_id, now)
            if touched is not None:
                return ChunkClaim(new.chunk_id, ChunkState.LIVE, replicas_in(touched))
            item = await self.db.get(CHUNKS, *chunk_key(new.chunk_id))
            # Gone entirely: the collector finished with it; as good as deleting.
            return ChunkClaim(new.chunk_id, ChunkState.DELETING, replicas_in(item))

        claims = await each(list(unique.values()), one)
        return {claim.chunk_id: claim for claim in claims}

    async def touch_chunks(self, chunk_ids: Sequence[str]) -> None:
        """Tell the collector these chunks are in use (a long upload's);
        chunks not live (or unknown) are left alone."""
        now = time.time()
        await each(list(dict.fromkeys(chunk_ids)), lambda chunk_id: self._touch(chunk_id, now))

    async def replicas_of(self, chunk_ids: Sequence[str]) -> dict[str, tuple[str, ...]]:
        """Where each of these chunks has copies (chunks with none are absent)."""
        ids = list(dict.fromkeys(chunk_ids))
        found = await self.db.get_many(CHUNKS, [chunk_key(i) for i in ids])
        answer: dict[str, tuple[str, ...]] = {}
        for chunk_id in ids:
            workers = replicas_in(found.get(chunk_key(chunk_id)))
            if workers:
                answer[chunk_id] = workers
        return answer

    async def replicas(self, chunk_id: str) -> tuple[str, ...]:
        return replicas_in(await self.db.get(CHUNKS, *chunk_key(chunk_id)))

    async def record_copies(self, pairs: Iterable[tuple[str, str]], now: float) -> None:
        """Record copies (chunk id, worker id) of existing chunks: in the
        chunk's ``replicas`` map (a copy already known keeps its time), then
        as the worker's ``W#`` item. A chunk that no longer exists gains
        nothing. A crash between the two leaves the map ahead of the worker
        items, never the other way round."""
        by_chunk: dict[str, set[str]] = defaultdict(set)
        for chunk_id, worker_id in pairs:
            by_chunk[chunk_id].add(worker_id)
        if not by_chunk:
            return

        async def one(chunk_id: str) -> list[dict[str, Any]]:
            workers = sorted(by_chunk[chunk_id])
            if not await self._add_to_replica_map(chunk_id, workers, now):
                return []
            return [{"pk": pk, "sk": sk, "chunk_id": chunk_id, "worker_id": worker_id,
                     "stored_at": now}
                    for worker_id in workers for pk, sk in [worker_key(worker_id, chunk_id)]]

        recorded = await each(sorted(by_chunk), one)
        await self.db.write_many(CHUNKS, puts=[item for items in recorded for item in items])

    async def _add_to_replica_map(self, chunk_id: str, workers: list[str],
                                  now: float) -> bool:
        """Add workers to a chunk's map; False if the chunk does not exist."""
        pk, sk = chunk_key(chunk_id)
        names = {f"#w{i}": worker for i, worker in enumerate(workers)}
        sets = ", ".join(f"replicas.{name} = if_not_exists(replicas.{name}, :now)"
                         for name in names)
        try:
            await self.db.call(
                "update_item", TableName=self.db.table(CHUNKS),
                Key=encode({"pk": pk, "sk": sk}), UpdateExpression=f"SET {sets}",
                ConditionExpression="attribute_exists(replicas)",
                ExpressionAttributeNames=names, ExpressionAttributeValues={":now": value(now)})
            return True
        except Exception as exc:
            if not conditional_failed(exc):
                raise
        # No map yet (an item written before maps were kept) or no item at all.
        try:
            await self.db.call(
                "update_item", TableName=self.db.table(CHUNKS),
                Key=encode({"pk": pk, "sk": sk}), UpdateExpression="SET replicas = :map",
                ConditionExpression="attribute_exists(pk) AND attribute_not_exists(replicas)",
                ExpressionAttributeValues={":map": value({w: now for w in workers})})
            return True
        except Exception as exc:
            if not conditional_failed(exc):
                raise
        # Either it has a map now (another writer made it) or it is gone.
        if await self.db.get(CHUNKS, pk, sk) is None:
            return False
        return await self._add_to_replica_map(chunk_id, workers, now)

    async def _create_chunk(self, new: NewChunk, now: float) -> bool:
        """Put a new chunk item; False if one exists already."""
        pk, sk = chunk_key(new.chunk_id)
        try:
            await self.db.call(
                "put_item", TableName=self.db.table(CHUNKS),
                Item=encode({
                    "pk": pk, "sk": sk, "chunk_id": new.chunk_id, "raw_size": new.size,
                    "stored_size": new.stored_size, "compressed": bool(new.compressed),
                    "state": LIVE, "touched_at": now, "created_at": now, "refs": 0,
                    "replicas": {}, "g1pk": GC, "g1sk": gc_sort_key(now, new.chunk_id)}),
                ConditionExpression="attribute_not_exists(pk)")
            return True
        except Exception as exc:
            if not conditional_failed(exc):
                raise
            return False

    async def _touch(self, chunk_id: str, now: float) -> dict[str, Any] | None:
        """Touch a live chunk (moving it in the collector's index, if it is
        there) and return its item; None if it is not live or not known."""
        pk, sk = chunk_key(chunk_id)
        try:
            answer = await self.db.call(
                "update_item", TableName=self.db.table(CHUNKS),
                Key=encode({"pk": pk, "sk": sk}),
                UpdateExpression="SET touched_at = :now, g1sk = :gsk",
                ConditionExpression="#s = :live",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":now": value(now), ":live": value(LIVE),
                                           ":gsk": value(gc_sort_key(now, chunk_id))},
                ReturnValues="ALL_NEW")
        except Exception as exc:
            if not conditional_failed(exc):
                raise
            return None
        return decode(answer.get("Attributes", {}))

    # == the rest of the part (dynchunks) ==================================================

