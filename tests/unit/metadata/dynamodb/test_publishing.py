"""Publishing versions on DynamoDB, where the rules are conditional writes:
concurrent writers from two masters number one name's versions without gap
or repeat, a manifest far beyond a transaction's 100 items is written in
pages, chunk references follow the versions that hold them, and a crash
between steps leaks references, never loses a chunk a version needs."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from echofs.core.errors import NotFound
from echofs.metadata import backends
from echofs.metadata.dynamodb import commits
from echofs.metadata.dynamodb.base import CHUNKS, FILES, chunk_key
from echofs.metadata.dynamodb.connection import encode
from echofs.metadata.dynamodb.files import DynamoFiles
from echofs.metadata.dynamodb.repository import DynamoMetadataRepository

from ..conftest import chunk, future, request, upload

METADATA_BACKENDS = ["dynamodb"]


@pytest.fixture
async def other(repo: DynamoMetadataRepository, database_url: str
                ) -> AsyncIterator[DynamoMetadataRepository]:
    """A second repository on the same tables: another master."""
    second = backends.open_metadata(database_url)
    try:
        yield second  # type: ignore[misc]
    finally:
        await second.close()


async def _refs(repo: DynamoMetadataRepository, chunk_id: str) -> int:
    item = await repo.db.get(CHUNKS, *chunk_key(chunk_id))
    assert item is not None
    return int(item["refs"])


async def _partition(repo: DynamoMetadataRepository, pk: str) -> list[str]:
    return [item["sk"] async for item in repo.db.query(
        FILES, KeyConditionExpression="pk = :pk", ExpressionAttributeValues=encode({":pk": pk}),
        ProjectionExpression="sk")]


async def test_concurrent_overwrites_from_two_masters_number_one_to_a_hundred(
        repo: DynamoMetadataRepository, other: DynamoMetadataRepository) -> None:
    chunks = [chunk(f"hot{i}", i + 1) for i in range(100)]
    await repo.claim_chunks(chunks)

    async def write(master: DynamoMetadataRepository, index: int):  # type: ignore[no-untyped-def]
        return await upload(master, "alice", "hot", [chunks[index]], claim=False,
                            versions_kept=100)

    results = await asyncio.gather(*(write(repo if i % 2 else other, i) for i in range(100)))

    assert sorted(version.version for _, version in results) == list(range(1, 101))
    [file_id] = {record.file_id for record, _ in results}
    assert (await other.get_file(file_id)).current_version == 100
    versions = await repo.list_versions(file_id)
    assert [v.version for v in versions] == list(range(100, 0, -1))
    # Each number holds the manifest of the upload that got it.
    for _, version in results[::7]:
        got = await other.get_version(file_id, version.version)
        assert (got.blake3, got.size) == (version.blake3, version.size)
    for c in chunks:
        assert await _refs(repo, c.chunk_id) == 1


async def test_a_manifest_beyond_a_transaction_is_written_in_pages(
        repo: DynamoMetadataRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    # Pages of 100 chunks (not the 1000 of production) keep the test quick;
    # 205 distinct chunks are still twice what one transaction may hold.
    monkeypatch.setattr(commits, "PAGE_CHUNKS", 100)
    chunks = [chunk(f"part{i}", 10 + i % 7) for i in range(205)]
    shared = chunks[3]
    chunks.append(shared)  # a chunk used twice holds two references
    await repo.claim_chunks(chunks)

    record, version = await upload(repo, "alice", "big", chunks, claim=False)

    assert version.chunk_count == len(chunks)
    got = await repo.get_version(record.file_id)
    assert [c.chunk_id for c in got.chunks] == [c.chunk_id for c in chunks]
    offsets = [0]
    for c in chunks[:-1]:
        offsets.append(offsets[-1] + c.size)
    assert [c.offset for c in got.chunks] == offsets
    assert got.chunks[-1].replicas == ("w1",)
    item = await repo.db.get(FILES, f"I#{record.file_id}", "V#0000000001")
    assert item is not None and "chunks" not in item and int(item["pages"]) == 3
    pages = await _partition(repo, f"M#{item['manifest_id']}")
    assert pages == ["000000", "000001", "000002"]
    assert await _refs(repo, shared.chunk_id) == 2

    assert await repo.delete_file(record.file_id) == 1

    assert await _partition(repo, f"M#{item['manifest_id']}") == []
    assert await _partition(repo, f"I#{record.file_id}") == []
    assert await _refs(repo, shared.chunk_id) == 0
    assert len(await repo.claim_garbage(future())) == 205


async def test_references_follow_versions_through_retention_and_deletes(
        repo: DynamoMetadataRepository) -> None:
    a, b, c = chunk("a"), chunk("b"), chunk("c")
    record, _ = await upload(repo, "alice", "f", [a, b], versions_kept=2)
    await upload(repo, "alice", "f", [b], versions_kept=2)
    assert [await _refs(repo, x.chunk_id) for x in (a, b)] == [1, 2]

    await upload(repo, "alice", "f", [c], versions_kept=2)  # prunes version 1

    assert [await _refs(repo, x.chunk_id) for x in (a, b, c)] == [0, 1, 1]
    await repo.delete_file(record.file_id, version=3)  # the current one: falls back to 2
    assert (await repo.get_file(record.file_id)).current_version == 2
    assert [await _refs(repo, x.chunk_id) for x in (b, c)] == [1, 0]
    assert sorted(await repo.claim_garbage(future())) == sorted([a.chunk_id, c.chunk_id])
    # The head and the by-id item moved together.
    assert (await repo.find_file("alice", "f")).blake3 == (await repo.get_version(
        record.file_id)).blake3


async def test_a_crash_between_steps_leaks_and_never_loses(
        repo: DynamoMetadataRepository, monkeypatch: pytest.MonkeyPatch) -> None:
    kept, orphaned = chunk("kept"), chunk("orphaned")
    record, _ = await upload(repo, "alice", "f", [kept])
    await repo.claim_chunks([orphaned])

    async def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the master stopped here")

    # A commit that stops after taking its references, before publishing.
    monkeypatch.setattr(type(repo), "_try_publish", crash)
    with pytest.raises(RuntimeError):
        await repo.commit_versions([request("alice", "g", [orphaned])])
    monkeypatch.undo()
    with pytest.raises(NotFound):
        await repo.find_file("alice", "g")
    assert await _refs(repo, orphaned.chunk_id) == 1  # held by nothing: a leak

    # A delete that stops after removing the version, before giving back.
    monkeypatch.setattr(DynamoFiles, "drop_refs", crash)
    with pytest.raises(RuntimeError):
        await repo.delete_file(record.file_id)
    monkeypatch.undo()
    with pytest.raises(NotFound):
        await repo.get_file(record.file_id)
    assert await _refs(repo, kept.chunk_id) == 1

    # Neither chunk is collected: leaked, not lost.
    assert await repo.claim_garbage(future()) == []
    assert await repo.chunk_state(kept.chunk_id) == "live"


async def test_a_request_keeping_no_version_is_refused_before_any_write(
        repo: DynamoMetadataRepository) -> None:
    a = chunk("a")
    await repo.claim_chunks([a])
    with pytest.raises(ValueError, match="at least one version"):
        await repo.commit_versions([request("alice", "f", [a], versions_kept=0)])
    with pytest.raises(NotFound):
        await repo.find_file("alice", "f")
    assert await _refs(repo, a.chunk_id) == 0
