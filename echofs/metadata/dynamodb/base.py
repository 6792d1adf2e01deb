"""What every part of the DynamoDB repository stands on: the client, the
table names, and the chunk-reference rules the parts share (a version or a
session part that uses a chunk holds a reference on it; see the package
docstring)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, TypeVar

from echofs.metadata.dynamodb.connection import Dynamo, Target, conditional_failed, value

FILES, CHUNKS, SESSIONS, ACCOUNTS, CONTROLLER = (
    "files", "chunks", "sessions", "accounts", "controller")
INDEX = "gsi1"
LIVE, DELETING = "live", "deleting"
GC, DELETING_INDEX = "GC", "DEL"


T = TypeVar("T")
R = TypeVar("R")
# Requests in flight at once for one call's many single-item writes: enough
# to hide round trips, few enough to stay well inside the client's pool.
WIDTH = 16


async def each(items: Sequence[T], fn: Callable[[T], Awaitable[R]], width: int = WIDTH
               ) -> list[R]:
    """``fn`` of every item, at most ``width`` at a time; answers in order."""
    gate = asyncio.Semaphore(width)

    async def one(item: T) -> R:
        async with gate:
            return await fn(item)

    return list(await asyncio.gather(*(one(item) for item in items)))


def chunk_key(chunk_id: str) -> tuple[str, str]:
    return f"C#{chunk_id}", "CHUNK"


def gc_sort_key(touched_at: float, chunk_id: str) -> str:
    """The collector's index orders unreferenced chunks by last touch."""
    return f"{touched_at:020.6f}#{chunk_id}"


def version_sort_key(version: int) -> str:
    return f"V#{version:010d}"


class DynamoBase:
    """The base of every part: ``self.db`` and the chunk references."""

    def __init__(self, target: Target | Dynamo) -> None:
        self.db = target if isinstance(target, Dynamo) else Dynamo(target)
        # The SQL repository's attributes that callers test for: several
        # masters share these tables, so nothing is memoized, and there is
        # no SQLAlchemy engine (nor a local disk to watch).
        self.memo = None
        self.engine = None

    def keep_read_answers(self) -> None:
        """Nothing to keep: other masters may write at any time."""

    async def close(self) -> None:
        await self.db.close()

    # -- references on chunks ------------------------------------------------------------

    async def add_refs(self, chunk_ids: Sequence[str], now: float) -> set[str]:
        """Take one reference on each of ``chunk_ids`` (repeats count once
        per occurrence) if it is live, touching it; return the ids that were
        not live (or do not exist), on which nothing was taken.

        A caller that then gives up must :meth:`drop_refs` what it took."""
        counts: dict[str, int] = {}
        for chunk_id in chunk_ids:
            counts[chunk_id] = counts.get(chunk_id, 0) + 1

        async def take(chunk_id: str) -> bool:
            pk, sk = chunk_key(chunk_id)
            try:
                await self.db.call(
                    "update_item", TableName=self.db.table(CHUNKS),
                    Key={"pk": value(pk), "sk": value(sk)},
                    UpdateExpression="SET refs = if_not_exists(refs, :zero) + :n, "
                                     "touched_at = :now, g1sk = :gsk REMOVE g1pk",
                    ConditionExpression="attribute_exists(pk) AND #s = :live",
                    ExpressionAttributeNames={"#s": "state"},
                    ExpressionAttributeValues={
                        ":zero": value(0), ":n": value(counts[chunk_id]), ":now": value(now),
                        ":gsk": value(gc_sort_key(now, chunk_id)), ":live": value(LIVE)})
            except Exception as exc:
                if not conditional_failed(exc):
                    raise
                return False
            return True

        # One request per distinct chunk, a few at a time: a large file's
        # commit must not wait for them one by one.
        taken = await each(list(counts), take)
        failed = {chunk_id for chunk_id, ok in zip(counts, taken, strict=True) if not ok}
        return failed

    async def drop_refs(self, chunk_ids: Iterable[str], now: float) -> None:
        """Give back one reference per occurrence; a chunk left with none
        joins the collector's index (touched now: the grace starts again)."""
        counts: dict[str, int] = {}
        for chunk_id in chunk_ids:
            counts[chunk_id] = counts.get(chunk_id, 0) + 1

        async def give(chunk_id: str) -> None:
            pk, sk = chunk_key(chunk_id)
            try:
                answer: dict[str, Any] = await self.db.call(
                    "update_item", TableName=self.db.table(CHUNKS),
                    Key={"pk": value(pk), "sk": value(sk)},
                    UpdateExpression="SET refs = refs - :n",
                    ConditionExpression="refs >= :n",
                    ExpressionAttributeValues={":n": value(counts[chunk_id])},
                    ReturnValues="UPDATED_NEW")
            except Exception as exc:
                if not conditional_failed(exc):
                    raise
                return  # gone already (or never counted): nothing to give back
            if int(answer["Attributes"]["refs"]["N"]) == 0:
                await self._mark_unreferenced(chunk_id, now)

        await each(list(counts), give)

    async def _mark_unreferenced(self, chunk_id: str, now: float) -> None:
        pk, sk = chunk_key(chunk_id)
        try:
            await self.db.call(
                "update_item", TableName=self.db.table(CHUNKS),
                Key={"pk": value(pk), "sk": value(sk)},
                UpdateExpression="SET g1pk = :gc, g1sk = :gsk, touched_at = :now",
                ConditionExpression="refs = :zero AND #s = :live",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={
                    ":gc": value(GC), ":gsk": value(gc_sort_key(now, chunk_id)),
                    ":now": value(now), ":zero": value(0), ":live": value(LIVE)})
        except Exception as exc:
            if not conditional_failed(exc):  # referenced again meanwhile: fine
                raise
