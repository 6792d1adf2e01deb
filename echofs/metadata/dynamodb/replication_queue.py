"""Durable intents to copy a chunk to a worker (the SQL repository's
``echofs.metadata.replication_queue``).

A task is the item ``C#<chunk_id>`` / ``R#<target worker>`` in the chunks
table: one per chunk and target, in the chunk's own partition (so forgetting
a chunk finds its tasks with one Query), and in ``gsi1`` as ``DUE`` /
``<next_attempt_at>#<chunk_id>#<target>`` — the queue in the order tasks
fall due. Each task carries a random ``task_id``: the replicator knows a
task by it, and completing, retrying or dropping a task is conditional on
it, so an old task's late answer never touches a newer task for the same
chunk and target (as deleting by row id does on SQL).

The index is eventually consistent: what it lists as due is read again
(strongly) before it is handed out.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from echofs.core.manifest import ReplicationTask
from echofs.core.vocabulary import ChunkState, ReplicationReason
from echofs.metadata.dynamodb.base import CHUNKS, INDEX, DynamoBase, chunk_key, each
from echofs.metadata.dynamodb.connection import (
    Dynamo,
    cancellation_reasons,
    conditional_failed,
    encode,
    transaction_cancelled,
    value,
)
from echofs.metadata.replication_queue import ChunkStanding, ReplicationBreakdown

DUE = "DUE"
TASK_PREFIX = "R#"


def task_key(chunk_id: str, target_worker: str) -> tuple[str, str]:
    return f"C#{chunk_id}", f"{TASK_PREFIX}{target_worker}"


def due_sort_key(next_attempt_at: float, chunk_id: str, target_worker: str) -> str:
    """The queue's order: when a task falls due (fixed width, so string order
    is time order), then which task."""
    return f"{next_attempt_at:020.6f}#{chunk_id}#{target_worker}"


def task_item(chunk_id: str, target_worker: str, reason: ReplicationReason,
              now: float) -> dict[str, Any]:
    pk, sk = task_key(chunk_id, target_worker)
    return {"pk": pk, "sk": sk, "chunk_id": chunk_id, "target_worker": target_worker,
            "reason": str(reason), "created_at": now, "next_attempt_at": now, "attempts": 0,
            # Random, not a counter: a counter would be one hot item every
            # enqueue of every master writes.
            "task_id": secrets.randbits(62),
            "g1pk": DUE, "g1sk": due_sort_key(now, chunk_id, target_worker)}


def task_record(item: dict[str, Any]) -> ReplicationTask:
    return ReplicationTask(int(item["task_id"]), str(item["chunk_id"]),
                           str(item["target_worker"]), ReplicationReason(item["reason"]),
                           float(item["created_at"]), int(item["attempts"]))


async def queue_copies(db: Dynamo, chunk_id: str, targets: Iterable[str],
                       reason: ReplicationReason, now: float) -> None:
    """Durable intents to copy ``chunk_id`` to each of ``targets``, each put
    only while the chunk's item exists and no task for that target does
    (queuing it again is harmless; a chunk the collector forgot is owed to
    nobody)."""
    chunk_pk, chunk_sk = chunk_key(chunk_id)
    for target in dict.fromkeys(targets):
        try:
            await db.call("transact_write_items", TransactItems=[
                {"ConditionCheck": {
                    "TableName": db.table(CHUNKS),
                    "Key": {"pk": value(chunk_pk), "sk": value(chunk_sk)},
                    "ConditionExpression": "attribute_exists(pk)"}},
                {"Put": {
                    "TableName": db.table(CHUNKS),
                    "Item": encode(task_item(chunk_id, target, reason, now)),
                    "ConditionExpression": "attribute_not_exists(pk)"}},
            ])
        except Exception as exc:
            # Either condition failing is an answer: the chunk is gone, or
            # the copy is queued already.
            if not (transaction_cancelled(exc)
                    and "ConditionalCheckFailed" in cancellation_reasons(exc)):
                raise


class DynamoReplicationQueue(DynamoBase):
    # Provided by DynamoChunks, next to this part in DynamoMetadataRepository.
    record_copies: Callable[[Iterable[tuple[str, str]], float], Awaitable[None]]

    async def enqueue_replication(self, chunk_id: str, target_worker: str,
                                  reason: ReplicationReason) -> None:
        """Queue a copy of ``chunk_id`` for ``target_worker``. A chunk the
        collector removed meanwhile is owed to nobody: nothing is queued."""
        reason = ReplicationReason(reason)  # refuse a free string before the table
        await queue_copies(self.db, chunk_id, [target_worker], reason, time.time())

    async def expedite_replication(self, target_worker: str) -> int:
        """Make every task for ``target_worker`` due now (it just came back)."""
        now = time.time()
        tasks = [item async for item in self._queue(
            FilterExpression="target_worker = :w",
            ExpressionAttributeValues={":w": value(target_worker)})]

        async def make_due(item: dict[str, Any]) -> bool:
            chunk_id = str(item["chunk_id"])
            return await self._update_task(
                chunk_id, target_worker, int(item["task_id"]),
                "SET next_attempt_at = :now, g1sk = :gsk",
                {":now": value(now), ":gsk": value(due_sort_key(now, chunk_id, target_worker))})

        # A worker back from a long absence may be owed many copies.
        return sum(await each(tasks, make_due))

    async def drop_replication(self, task: ReplicationTask) -> None:
        await self._delete_task(task)

    async def drop_orphaned_replication(self, task: ReplicationTask,
                                        untouched_before: float) -> bool:
        """Drop ``task`` if its chunk is an orphan's: no version or session
        part references it and no upload touched it since
        ``untouched_before``. False (and nothing dropped) if the chunk is in
        use after all, or the task is no longer this one.

        One transaction: the chunk's condition is checked on the very item an
        upload's reference or touch would change, so the two cannot cross."""
        chunk_pk, chunk_sk = chunk_key(task.chunk_id)
        pk, sk = task_key(task.chunk_id, task.target_worker)
        try:
            await self.db.call("transact_write_items", TransactItems=[
                {"ConditionCheck": {
                    "TableName": self.db.table(CHUNKS),
                    "Key": {"pk": value(chunk_pk), "sk": value(chunk_sk)},
                    "ConditionExpression": "attribute_exists(pk) AND touched_at < :before "
                                           "AND (attribute_not_exists(refs) OR refs = :zero)",
                    "ExpressionAttributeValues": {":before": value(untouched_before),
                                                  ":zero": value(0)}}},
                {"Delete": {
                    "TableName": self.db.table(CHUNKS),
                    "Key": {"pk": value(pk), "sk": value(sk)},
                    "ConditionExpression": "task_id = :id",
                    "ExpressionAttributeValues": {":id": value(task.task_id)}}},
            ])
        except Exception as exc:
            if transaction_cancelled(exc) and \
                    "ConditionalCheckFailed" in cancellation_reasons(exc):
                return False
            raise
        return True

    async def complete_replication(self, task: ReplicationTask) -> None:
        """The copy is made: record it, then drop the task. In that order: a
        crash between leaves the task, and the copy is just made again."""
        await self.record_copies([(task.chunk_id, task.target_worker)], time.time())
        await self._delete_task(task)

    async def retry_replication(self, task: ReplicationTask, delay: float) -> None:
        due = time.time() + delay
        await self._update_task(
            task.chunk_id, task.target_worker, task.task_id,
            "SET attempts = attempts + :one, next_attempt_at = :due, g1sk = :gsk",
            {":one": value(1), ":due": value(due),
             ":gsk": value(due_sort_key(due, task.chunk_id, task.target_worker))})

    async def chunk_standing(self, chunk_id: str) -> ChunkStanding | None:
        """The chunk's state, whether a version or session part uses it and
        its last touch (None: no item, the collector removed it)."""
        item = await self.db.get(CHUNKS, *chunk_key(chunk_id))
        if item is None:
            return None
        return ChunkStanding(ChunkState(item["state"]), int(item.get("refs", 0)) > 0,
                             float(item["touched_at"]))

    async def due_replications(self, limit: int = 100) -> list[ReplicationTask]:
        """Tasks due now, the longest due first. The index suggests them; each
        is read again, so a task completed or postponed meanwhile is left out."""
        now = time.time()
        found: list[ReplicationTask] = []
        # A little more than asked: some of what the index suggests may be stale.
        suggested = [item async for item in self._queue(
            "g1sk < :cut", {":cut": value(f"{now:020.6f}$")}, limit=limit + 16)]
        current = await self.db.get_many(CHUNKS, [(i["pk"], i["sk"]) for i in suggested])
        for old in suggested:
            item = current.get((old["pk"], old["sk"]))
            # Rounded to the index's microseconds, as the index query was.
            if item is not None and float(item["next_attempt_at"]) <= now + 1e-6:
                found.append(task_record(item))
                if len(found) == limit:
                    break
        return found

    async def replication_backlog(self) -> tuple[int, float | None]:
        """Queue depth and the creation time of its oldest item (the whole
        queue is read: it is small but for a worker's long absence)."""
        depth, oldest = 0, None
        async for item in self._queue(ProjectionExpression="#c",
                                      ExpressionAttributeNames={"#c": "created_at"}):
            depth += 1
            created = float(item["created_at"])
            oldest = created if oldest is None else min(oldest, created)
        return depth, oldest

    async def replication_breakdown(self) -> ReplicationBreakdown:
        """The queue by reason and by target worker, how much of it is due
        now and the most attempts any task has had (the replication stats)."""
        now = time.time()
        by_reason: dict[str, int] = {}
        by_target: dict[str, int] = {}
        due = attempts = 0
        async for item in self._queue(
                ProjectionExpression="#r, #t, #n, #a",
                ExpressionAttributeNames={"#r": "reason", "#t": "target_worker",
                                          "#n": "next_attempt_at", "#a": "attempts"}):
            by_reason[str(item["reason"])] = by_reason.get(str(item["reason"]), 0) + 1
            target = str(item["target_worker"])
            by_target[target] = by_target.get(target, 0) + 1
            due += float(item["next_attempt_at"]) <= now
            attempts = max(attempts, int(item["attempts"]))
        return ReplicationBreakdown(by_reason, by_target, due, attempts)

    # -- the queue's items -----------------------------------------------------------

    def _queue(self, condition: str = "", values: dict[str, Any] | None = None, *,
               limit: int | None = None, **kwargs: Any) -> AsyncIterator[dict[str, Any]]:
        """Tasks from the ``DUE`` index in due order (``condition``: more of
        the key condition, on ``g1sk``)."""
        values = {":due": value(DUE), **(values or {}),
                  **kwargs.pop("ExpressionAttributeValues", {})}
        return self.db.query(
            CHUNKS, index=INDEX, limit=limit,
            KeyConditionExpression="g1pk = :due" + (f" AND {condition}" if condition else ""),
            ExpressionAttributeValues=values, **kwargs)

    async def _update_task(self, chunk_id: str, target_worker: str, task_id: int,
                           update: str, values: dict[str, Any]) -> bool:
        """Change a task if it is still the one known by ``task_id``."""
        pk, sk = task_key(chunk_id, target_worker)
        try:
            await self.db.call(
                "update_item", TableName=self.db.table(CHUNKS),
                Key={"pk": value(pk), "sk": value(sk)}, UpdateExpression=update,
                ConditionExpression="task_id = :id",
                ExpressionAttributeValues={":id": value(task_id), **values})
        except Exception as exc:
            if conditional_failed(exc):
                return False  # done, dropped or queued anew meanwhile
            raise
        return True

    async def _delete_task(self, task: ReplicationTask) -> None:
        pk, sk = task_key(task.chunk_id, task.target_worker)
        try:
            await self.db.call(
                "delete_item", TableName=self.db.table(CHUNKS),
                Key={"pk": value(pk), "sk": value(sk)},
                ConditionExpression="task_id = :id",
                ExpressionAttributeValues={":id": value(task.task_id)})
        except Exception as exc:
            if not conditional_failed(exc):  # gone already, or a newer task
                raise
