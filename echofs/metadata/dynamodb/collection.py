"""Garbage collection's claims on unreferenced chunks (the SQL
repository's ``echofs.metadata.collection``).

The candidates come from ``gsi1``: ``GC`` lists live chunks nothing
references, oldest touch first; ``DEL`` lists chunks claimed and not yet
forgotten. The index only suggests: a claim is a conditional write on the
chunk's item (``refs = 0 AND state = live AND touched_at < cutoff``), the
same item an upload's reference changes, so a chunk taken up again between
the Query and the claim is left alone; and a claim resumed from ``DEL`` is
read again before the collector deletes copies on its word.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from echofs.metadata.collection import Reclaimable
from echofs.metadata.dynamodb.base import (
    CHUNKS,
    DELETING,
    DELETING_INDEX,
    GC,
    INDEX,
    LIVE,
    DynamoBase,
    chunk_key,
    each,
)
from echofs.metadata.dynamodb.chunks import worker_key
from echofs.metadata.dynamodb.connection import conditional_failed, value


def chunk_id_of(item: dict[str, Any]) -> str:
    return str(item["pk"]).removeprefix("C#")


class DynamoCollection(DynamoBase):
    async def reclaimable(self) -> Reclaimable:
        """What the collector will remove: unreferenced chunks (claimed or
        still waiting out their grace period) and the bytes their copies hold."""
        count = stored = 0
        oldest: float | None = None
        for listing in (GC, DELETING_INDEX):
            async for item in self._listed(listing):
                if int(item.get("refs", 0)) != 0:
                    continue  # referenced again; the index has not caught up
                count += 1
                stored += int(item["stored_size"]) * len(item.get("replicas") or {})
                touched = float(item["touched_at"])
                oldest = touched if oldest is None else min(oldest, touched)
        return Reclaimable(count, stored, oldest if count else None)

    async def claim_garbage(self, touched_before: float, limit: int = 1000) -> list[str]:
        """Mark unreferenced, untouched chunks as 'deleting' and return them,
        together with chunks a previous (interrupted) collection had claimed."""
        if limit <= 0:
            return []
        suggested = [chunk_id_of(item) async for item in self._listed(DELETING_INDEX,
                                                                        limit=limit)]
        current = await self.db.get_many(CHUNKS, [chunk_key(c) for c in suggested])
        pending = [c for c in suggested
                   if current.get(chunk_key(c), {}).get("state") == DELETING]
        if len(pending) >= limit:
            return pending
        claimed: list[str] = []
        batch: list[str] = []

        async def claim_batch() -> None:
            won = await each(batch, lambda chunk_id: self._claim(chunk_id, touched_before))
            claimed.extend(c for c, ok in zip(batch, won, strict=True) if ok)
            batch.clear()

        # Oldest touch first; the cut rounds as the index's keys do, and the
        # claim's condition compares the exact time. Claimed a batch at a
        # time, each batch what is still wanted: some may be refused.
        async for item in self._listed(GC, "g1sk < :cut",
                                       {":cut": value(f"{touched_before:020.6f}$")}):
            if len(pending) + len(claimed) >= limit:
                break
            batch.append(chunk_id_of(item))
            if len(batch) >= limit - len(pending) - len(claimed):
                await claim_batch()
        if batch and len(pending) + len(claimed) < limit:
            await claim_batch()
        return pending + claimed

    async def forget_chunks(self, chunk_ids: Sequence[str]) -> None:
        """Drop the items of chunks whose copies the collector has deleted:
        their copies and replication tasks, then the chunk itself if it is
        claimed (a live chunk keeps its item, as its row on SQL)."""
        await each(list(dict.fromkeys(chunk_ids)), self._forget)

    async def _forget(self, chunk_id: str) -> None:
        pk, sk = chunk_key(chunk_id)
        items = [item async for item in self.db.query(
            CHUNKS, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": value(pk)})]
        chunk = next((i for i in items if i["sk"] == sk), None)
        tasks = [(i["pk"], i["sk"]) for i in items if i["sk"] != sk]
        copies = [worker_key(w, chunk_id) for w in (chunk or {}).get("replicas") or {}]
        await self.db.write_many(CHUNKS, deletes=tasks + copies)
        if chunk is None:
            return
        if chunk.get("state") == DELETING:
            await self._delete_claimed(chunk_id)
        elif copies:
            await self._drop_copy_map(chunk_id)

    async def _claim(self, chunk_id: str, touched_before: float) -> bool:
        pk, sk = chunk_key(chunk_id)
        try:
            await self.db.call(
                "update_item", TableName=self.db.table(CHUNKS),
                Key={"pk": value(pk), "sk": value(sk)},
                UpdateExpression="SET #s = :deleting, g1pk = :del, g1sk = :id",
                ConditionExpression="#s = :live AND touched_at < :cut "
                                    "AND (attribute_not_exists(refs) OR refs = :zero)",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={
                    ":deleting": value(DELETING), ":del": value(DELETING_INDEX),
                    ":id": value(chunk_id), ":live": value(LIVE),
                    ":cut": value(touched_before), ":zero": value(0)})
        except Exception as exc:
            if conditional_failed(exc):
                return False  # referenced, touched or claimed meanwhile
            raise
        return True

    async def _delete_claimed(self, chunk_id: str) -> None:
        pk, sk = chunk_key(chunk_id)
        try:
            await self.db.call(
                "delete_item", TableName=self.db.table(CHUNKS),
                Key={"pk": value(pk), "sk": value(sk)},
                ConditionExpression="#s = :deleting",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":deleting": value(DELETING)})
        except Exception as exc:
            if not conditional_failed(exc):  # forgotten by another collector
                raise

    async def _drop_copy_map(self, chunk_id: str) -> None:
        pk, sk = chunk_key(chunk_id)
        try:
            await self.db.call(
                "update_item", TableName=self.db.table(CHUNKS),
                Key={"pk": value(pk), "sk": value(sk)},
                UpdateExpression="SET replicas = :empty",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":empty": {"M": {}}})
        except Exception as exc:
            if not conditional_failed(exc):
                raise

    def _listed(self, listing: str, condition: str = "", values: dict[str, Any] | None = None,
                *, limit: int | None = None) -> AsyncIterator[dict[str, Any]]:
        """Chunks of one ``gsi1`` listing (``GC`` or ``DEL``) in index order."""
        return self.db.query(
            CHUNKS, index=INDEX, limit=limit,
            KeyConditionExpression="g1pk = :l" + (f" AND {condition}" if condition else ""),
            ExpressionAttributeValues={":l": value(listing), **(values or {})})
