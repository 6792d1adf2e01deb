"""The typed vocabulary at the store's edges: the repository takes and gives
enums, and the database itself refuses a word outside them (migration 0004),
on SQLite and PostgreSQL alike."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import IntegrityError

from echofs.core.consistency import Mode
from echofs.core.vocabulary import ChunkState, ReplicationReason
from echofs.metadata.models import ChunkRow, ConsistencyModeRow, ModeTransitionRow, VersionRow
from echofs.metadata.repository import MetadataRepository

from .conftest import chunk, request, upload


async def test_records_carry_enums(repo: MetadataRepository) -> None:
    a = chunk("a")
    claims = await repo.claim_chunks([a])
    assert claims[a.chunk_id].state is ChunkState.LIVE
    assert await repo.chunk_state(a.chunk_id) is ChunkState.LIVE
    record, _ = await upload(repo, "alice", "f", [a], mode=Mode.AVAILABLE, claim=False)
    assert (await repo.find_file("alice", "f")).mode is Mode.AVAILABLE
    assert (await repo.get_version(record.file_id)).mode is Mode.AVAILABLE
    assert [v.mode for v in await repo.list_versions(record.file_id)] == [Mode.AVAILABLE]
    await repo.enqueue_replication(a.chunk_id, "w2", ReplicationReason.DEFERRED_COPY)
    [task] = await repo.due_replications()
    assert task.reason is ReplicationReason.DEFERRED_COPY


def test_a_commit_request_takes_a_modes_string_and_refuses_an_unknown_one() -> None:
    assert request("alice", "f", [], mode="hybrid").mode is Mode.HYBRID  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        request("alice", "f", [], mode="quorum")  # type: ignore[arg-type]


async def test_an_unknown_reason_is_refused_before_the_database(repo: MetadataRepository) -> None:
    a = chunk("a")
    await upload(repo, chunks=[a])
    with pytest.raises(ValueError):
        await repo.enqueue_replication(a.chunk_id, "w2", "because")  # type: ignore[arg-type]
    assert await repo.replication_backlog() == (0, None)


async def _insert(repo: MetadataRepository, statement) -> None:  # type: ignore[no-untyped-def]
    async with repo.engine.begin() as conn:
        await conn.execute(statement)


async def test_the_database_refuses_an_unknown_mode(repo: MetadataRepository) -> None:
    record, _ = await upload(repo, "alice", "f", [chunk("a")])
    now = time.time()
    with pytest.raises(IntegrityError):
        await _insert(repo, insert(VersionRow).values(
            file_id=record.file_id, version=2, size=0, blake3="0" * 64, chunk_count=0,
            mode="quorum", replicas_acked=0, created_at=now))
    with pytest.raises(IntegrityError):
        await _insert(repo, insert(ConsistencyModeRow).values(
            object_id=record.file_id, mode="sometimes", reason="policy", score=None,
            changed_at=now))
    for from_mode, to_mode in (("strong", "eventual"), ("eventual", "strong")):
        with pytest.raises(IntegrityError):
            await _insert(repo, insert(ModeTransitionRow).values(
                at=now, object_id=record.file_id, from_mode=from_mode, to_mode=to_mode,
                reason="policy", score=None, signals="{}"))
    # The words of the vocabulary are accepted.
    await _insert(repo, insert(ConsistencyModeRow).values(
        object_id=record.file_id, mode=Mode.HYBRID, reason="policy", score=None, changed_at=now))
    assert [v.version for v in await repo.list_versions(record.file_id)] == [1]


async def test_the_database_refuses_an_unknown_chunk_state(repo: MetadataRepository) -> None:
    now = time.time()
    with pytest.raises(IntegrityError):
        await _insert(repo, insert(ChunkRow).values(
            id="0" * 64, raw_size=1, stored_size=1, compressed=False, state="gone",
            touched_at=now, created_at=now))
    assert await repo.chunk_state("0" * 64) is None
