"""Claims, touches and where copies live (the SQL repository's
``echofs.metadata.chunks``).

A chunk is one item, ``C#<chunk_id>`` / ``CHUNK``: ``raw_size``,
``stored_size``, ``compressed``, ``state``, ``touched_at``, ``created_at``,
``refs`` and ``replicas`` (a map worker → stored at).

Where copies live is kept twice, and the chunk's item is the truth:

- the chunk item's ``replicas`` map (worker → stored at), read with the
  chunk's state in one strongly consistent get;
- an item ``W#<worker>`` / ``<chunk_id>`` per copy (``chunk_id``,
  ``worker_id``, ``stored_at``), so one worker's copies
  are one Query (``chunks_on_worker``), and in ``gsi1`` as
  ``REP#<first hex digit of the chunk id>`` / ``<chunk_id>#<worker>``, so
  every copy in (chunk, worker) order is sixteen Queries walked in turn
  (``replica_page``; sixteen partitions rather than one, so the index
  takes the writes of every new copy without a hot key);
- ``WORKERS`` / ``<worker>`` names each worker that ever held a copy;
  ``known_worker_ids`` asks each of them whether it still holds one.

Readers of ``W#`` items (and of their index) always confirm a copy on the
chunk's item: a ``W#`` item left by a crash, or by a chunk forgotten and
claimed anew, is an entry too many, never taken for a copy.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any

from echofs.core.manifest import NewChunk
from echofs.core.vocabulary import ChunkState, ReplicationReason
from echofs.metadata.dynamodb.base import (
    CHUNKS,
    GC,
    INDEX,
    LIVE,
    DynamoBase,
    chunk_key,
    each,
    gc_sort_key,
)
from echofs.metadata.dynamodb.connection import conditional_failed, decode, encode, value
from echofs.metadata.dynamodb.replication_queue import DUE, queue_copies
from echofs.metadata.records import ChunkClaim


def worker_key(worker_id: str, chunk_id: str) -> tuple[str, str]:
    return f"W#{worker_id}", chunk_id


def replicas_in(item: dict[str, Any] | None) -> tuple[str, ...]:
    """The workers holding copies of a chunk item, in id order."""
    if not item:
        return ()
    return tuple(sorted(item.get("replicas") or {}))


WORKERS = "WORKERS"
COPY_PREFIX = "W#"
COPY_INDEX_PREFIX = "REP#"
# Chunk ids are blake3 digests in lowercase hex: their first digit splits the
# copies' index into partitions whose order is the ids' order.
HEX_DIGITS = "0123456789abcdef"


def copy_item(chunk_id: str, worker_id: str, stored_at: float) -> dict[str, Any]:
    pk, sk = worker_key(worker_id, chunk_id)
    return {"pk": pk, "sk": sk, "chunk_id": chunk_id, "worker_id": worker_id,
            "stored_at": stored_at, "g1pk": f"{COPY_INDEX_PREFIX}{chunk_id[:1]}",
            "g1sk": f"{chunk_id}#{worker_id}"}


def live_copy(chunk: dict[str, Any] | None, worker_id: str) -> bool:
    """Whether the chunk's item confirms a copy on ``worker_id`` of a live chunk."""
    return chunk is not None and chunk.get("state") == LIVE \
        and worker_id in (chunk.get("replicas") or {})


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
        """Record copies (chunk id, worker id) of existing chunks: as the
        worker's ``W#`` item, then in the chunk's ``replicas`` map (a copy
        already known keeps its time). A chunk that no longer exists gains
        nothing (its ``W#`` items are taken back). A crash between the two
        leaves a ``W#`` item the map does not confirm, which readers ignore:
        never a copy in the map that a worker's listing misses."""
        by_chunk: dict[str, set[str]] = defaultdict(set)
        for chunk_id, worker_id in pairs:
            by_chunk[chunk_id].add(worker_id)
        if not by_chunk:
            return
        chunk_ids = sorted(by_chunk)
        await self._register_workers(sorted({w for ws in by_chunk.values() for w in ws}))
        await self.db.write_many(CHUNKS, puts=[
            copy_item(chunk_id, worker_id, now)
            for chunk_id in chunk_ids for worker_id in sorted(by_chunk[chunk_id])])
        added = await each(chunk_ids, lambda chunk_id: self._add_to_replica_map(
            chunk_id, sorted(by_chunk[chunk_id]), now))
        await self.db.write_many(CHUNKS, deletes=[
            worker_key(worker_id, chunk_id) for chunk_id, ok in zip(chunk_ids, added, strict=True)
            if not ok for worker_id in sorted(by_chunk[chunk_id])])

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

    async def record_partial_write(self, chunk_id: str, stored_on: str, owed: Sequence[str],
                                   reason: ReplicationReason) -> None:
        """A chunk acknowledged with one copy: record it, then the durable
        intents for the copies still owed. Two steps, not one transaction as
        on SQL: a crash between leaves the copy without its intents, but
        then the upload that relied on it never commits (its write is
        acknowledged only after), and the chunk, referenced by nothing, is
        the collector's; the under-replication scan finds any other case."""
        reason = ReplicationReason(reason)  # refuse a free string before the table
        now = time.time()
        await self.record_copies([(chunk_id, stored_on)], now)
        await queue_copies(self.db, chunk_id, owed, reason, now)

    async def add_replicas(self, chunk_id: str, worker_ids: Iterable[str]) -> None:
        await self.record_copies([(chunk_id, w) for w in worker_ids], time.time())

    async def _register_workers(self, worker_ids: Sequence[str]) -> None:
        """Name these workers in ``WORKERS`` (once per process: the items
        are never removed, so a master that wrote one needs not write it again)."""
        known: set[str] = self.__dict__.setdefault("_registered_workers", set())
        new = [w for w in worker_ids if w not in known]
        if new:
            await self.db.write_many(CHUNKS, puts=[{"pk": WORKERS, "sk": w} for w in new])
            known.update(new)

    # -- what is stored where -----------------------------------------------------------

    async def chunk_state(self, chunk_id: str) -> ChunkState | None:
        item = await self.db.get(CHUNKS, *chunk_key(chunk_id))
        return None if item is None else ChunkState(item["state"])

    async def known_chunks(self, chunk_ids: Sequence[str]) -> set[str]:
        """Which of these ids the metadata store has an item for (any state)."""
        found = await self.db.get_many(CHUNKS, [chunk_key(c) for c in chunk_ids])
        return {pk.removeprefix("C#") for pk, _ in found}

    async def replica_page(
        self, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str, int]]:
        """(chunk id, worker id, stored size) of live chunks' replicas in key
        order after ``after``: the scrubber's cursor over everything stored.
        Fewer than ``limit`` only at the end (the scrubber's sign of a
        finished cycle)."""
        page: list[tuple[str, str, int]] = []
        suggested: list[tuple[str, str]] = []

        async def confirm() -> None:
            chunks = await self.db.get_many(CHUNKS, [chunk_key(c) for c, _ in suggested])
            for chunk_id, worker_id in suggested:
                chunk = chunks.get(chunk_key(chunk_id))
                if live_copy(chunk, worker_id) and len(page) < limit:
                    assert chunk is not None
                    page.append((chunk_id, worker_id, int(chunk["stored_size"])))
            suggested.clear()

        if limit <= 0:
            return page
        async for chunk_id, worker_id in self._copies_after(after):
            suggested.append((chunk_id, worker_id))
            if len(suggested) >= min(100, limit - len(page)):
                await confirm()
                if len(page) >= limit:
                    break
        if suggested:
            await confirm()
        return page

    async def _copies_after(self, after: tuple[str, str] | None
                            ) -> AsyncIterator[tuple[str, str]]:
        """Every copy the index lists, in (chunk id, worker id) order."""
        start = "" if after is None else f"{after[0]}#{after[1]}"
        for digit in HEX_DIGITS:
            if start[:1] > digit:
                continue  # this partition's ids all come before the cursor
            condition, values = "g1pk = :p", {":p": value(f"{COPY_INDEX_PREFIX}{digit}")}
            if start[:1] == digit:
                condition += " AND g1sk > :start"
                values[":start"] = value(start)
            async for item in self.db.query(CHUNKS, index=INDEX,
                                            KeyConditionExpression=condition,
                                            ExpressionAttributeValues=values):
                yield str(item["chunk_id"]), str(item["worker_id"])

    async def chunks_on_worker(
        self, worker_id: str, after: str | None, limit: int
    ) -> list[tuple[str, tuple[str, ...]]]:
        """Live chunks with a copy on ``worker_id`` (id order, after ``after``),
        each with all its replicas."""
        found: list[tuple[str, tuple[str, ...]]] = []
        cursor = after
        while len(found) < limit:
            pk = f"{COPY_PREFIX}{worker_id}"
            condition, values = "pk = :pk", {":pk": value(pk)}
            if cursor is not None:
                condition += " AND sk > :after"
                values[":after"] = value(cursor)
            ids = [str(item["sk"]) async for item in self.db.query(
                CHUNKS, KeyConditionExpression=condition, ExpressionAttributeValues=values,
                limit=min(100, limit - len(found)))]
            if not ids:
                break
            chunks = await self.db.get_many(CHUNKS, [chunk_key(c) for c in ids])
            for chunk_id in ids:
                chunk = chunks.get(chunk_key(chunk_id))
                if live_copy(chunk, worker_id):
                    assert chunk is not None
                    found.append((chunk_id, replicas_in(chunk)))
            cursor = ids[-1]
        return found

    async def under_replicated(self, replication_factor: int, limit: int = 500
                               ) -> list[tuple[str, tuple[str, ...]]]:
        """Chunks in use (by a version or a session part) with fewer than
        ``replication_factor`` recorded copies, with their replicas. Reads the
        whole chunks table, as the SQL query does."""
        short: list[tuple[str, tuple[str, ...]]] = []
        async for chunk in self._scan(
                FilterExpression="sk = :chunk AND #s = :live AND refs > :zero AND "
                                 "(attribute_not_exists(replicas) OR size(replicas) < :rf)",
                ProjectionExpression="pk, replicas",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":chunk": value("CHUNK"), ":live": value(LIVE),
                                           ":zero": value(0),
                                           ":rf": value(replication_factor)}):
            short.append((str(chunk["pk"]).removeprefix("C#"), replicas_in(chunk)))
        return sorted(short)[:max(0, limit)]

    async def known_worker_ids(self) -> list[str]:
        """Every worker the metadata mentions: holders of copies and targets
        of pending replication."""
        named = [str(item["sk"]) async for item in self.db.query(
            CHUNKS, KeyConditionExpression="pk = :w",
            ExpressionAttributeValues={":w": value(WORKERS)})]
        found = {w for w in named if await self._holds_a_copy(w)}
        async for task in self.db.query(
                CHUNKS, index=INDEX, KeyConditionExpression="g1pk = :due",
                ProjectionExpression="target_worker",
                ExpressionAttributeValues={":due": value(DUE)}):
            found.add(str(task["target_worker"]))
        return sorted(found)

    async def _holds_a_copy(self, worker_id: str) -> bool:
        """Whether some chunk's item confirms a copy on ``worker_id`` (its
        ``W#`` items are read until one is confirmed)."""
        batch: list[str] = []
        async for item in self.db.query(
                CHUNKS, KeyConditionExpression="pk = :pk",
                ExpressionAttributeValues={":pk": value(f"{COPY_PREFIX}{worker_id}")}):
            batch.append(str(item["sk"]))
            if len(batch) == 100:
                if await self._confirms_one(worker_id, batch):
                    return True
                batch = []
        return bool(batch) and await self._confirms_one(worker_id, batch)

    async def _confirms_one(self, worker_id: str, chunk_ids: list[str]) -> bool:
        chunks = await self.db.get_many(CHUNKS, [chunk_key(c) for c in chunk_ids])
        return any(worker_id in (c.get("replicas") or {}) for c in chunks.values())

    def _scan(self, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        """Every item of the chunks table a Scan's filter keeps."""
        return self.db.scan(CHUNKS, **kwargs)

