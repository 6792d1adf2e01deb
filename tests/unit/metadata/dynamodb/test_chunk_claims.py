"""Claims and touches on DynamoDB, read back from the chunk items: a new
chunk is unreferenced (in the collector's index, its grace starting now), a
touch moves it along that index, and a chunk the collector claimed is
reported, never revived."""

from __future__ import annotations

import asyncio
import time

from echofs.metadata.dynamodb.base import CHUNKS, INDEX, chunk_key, gc_sort_key
from echofs.metadata.dynamodb.connection import encode
from echofs.metadata.dynamodb.repository import DynamoMetadataRepository

from ..conftest import chunk

METADATA_BACKENDS = ["dynamodb"]


async def _item(repo: DynamoMetadataRepository, chunk_id: str) -> dict:  # type: ignore[type-arg]
    item = await repo.db.get(CHUNKS, *chunk_key(chunk_id))
    assert item is not None
    return item


async def _gc_index(repo: DynamoMetadataRepository) -> list[str]:
    return [item["g1sk"] async for item in repo.db.query(
        CHUNKS, index=INDEX, KeyConditionExpression="g1pk = :gc",
        ExpressionAttributeValues=encode({":gc": "GC"}))]


async def test_a_new_chunk_is_unreferenced_and_in_the_collectors_index(
        repo: DynamoMetadataRepository) -> None:
    before = time.time()
    a = chunk("a", 10, stored_size=7, compressed=True)
    claims = await repo.claim_chunks([a, a])
    assert list(claims) == [a.chunk_id] and claims[a.chunk_id].state == "live"
    item = await _item(repo, a.chunk_id)
    assert (item["raw_size"], item["stored_size"], item["compressed"]) == (10, 7, True)
    assert (item["state"], item["refs"], item["replicas"]) == ("live", 0, {})
    assert before <= float(item["touched_at"]) == float(item["created_at"]) <= time.time()
    assert await _gc_index(repo) == [gc_sort_key(float(item["touched_at"]), a.chunk_id)]


async def test_touches_move_live_chunks_and_leave_others_alone(
        repo: DynamoMetadataRepository) -> None:
    a, b = chunk("a"), chunk("b")
    await repo.claim_chunks([a, b])
    first = float((await _item(repo, a.chunk_id))["touched_at"])
    # The collector's claim, as its part writes it.
    pk, sk = chunk_key(b.chunk_id)
    await repo.db.call("update_item", TableName=repo.db.table(CHUNKS),
                       Key=encode({"pk": pk, "sk": sk}),
                       UpdateExpression="SET #s = :d, g1pk = :del, g1sk = :id",
                       ExpressionAttributeNames={"#s": "state"},
                       ExpressionAttributeValues=encode({":d": "deleting", ":del": "DEL",
                                                         ":id": b.chunk_id}))
    await asyncio.sleep(0.02)

    await repo.touch_chunks([a.chunk_id, b.chunk_id, "0" * 64])

    touched = await _item(repo, a.chunk_id)
    assert float(touched["touched_at"]) > first
    assert await _gc_index(repo) == [gc_sort_key(float(touched["touched_at"]), a.chunk_id)]
    doomed = await _item(repo, b.chunk_id)
    assert (doomed["state"], doomed["g1pk"], doomed["g1sk"]) == ("deleting", "DEL", b.chunk_id)
    # An unknown id is not created by a touch.
    assert await repo.db.get(CHUNKS, *chunk_key("0" * 64)) is None
    claims = await repo.claim_chunks([b])
    assert claims[b.chunk_id].state == "deleting"
    assert (await _item(repo, b.chunk_id))["state"] == "deleting"


async def test_replicas_read_the_chunks_map(repo: DynamoMetadataRepository) -> None:
    a, b = chunk("a"), chunk("b")
    await repo.claim_chunks([a, b])
    await repo.record_copies([(a.chunk_id, "w2"), (a.chunk_id, "w1"), ("0" * 64, "w1")],
                             time.time())

    assert await repo.replicas(a.chunk_id) == ("w1", "w2")
    assert await repo.replicas(b.chunk_id) == ()
    assert await repo.replicas_of([a.chunk_id, b.chunk_id, a.chunk_id]) == {
        a.chunk_id: ("w1", "w2")}
    assert (await repo.claim_chunks([a]))[a.chunk_id].replicas == ("w1", "w2")
    # Each copy is also its worker's item; nothing is recorded for a chunk
    # that does not exist.
    assert await repo.db.get(CHUNKS, "W#w1", a.chunk_id) is not None
    assert await repo.db.get(CHUNKS, "W#w1", "0" * 64) is None
    assert await repo.db.get(CHUNKS, *chunk_key("0" * 64)) is None
