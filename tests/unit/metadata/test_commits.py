"""The group commit: finished uploads become numbered versions, atomically,
also when many commit at once."""

from __future__ import annotations

import asyncio
import time

import pytest

from echofs.core.consistency import Mode
from echofs.core.errors import Conflict, NotFound
from echofs.core.manifest import FileRecord, VersionRecord
from echofs.metadata.repository import MetadataRepository, StoreTotals

from .conftest import ALL_BACKENDS, chunk, cid, future, request, upload

METADATA_BACKENDS = ALL_BACKENDS

# -- commit_versions ----------------------------------------------------------

async def test_first_commit_creates_version_one(repo: MetadataRepository) -> None:
    chunks = [chunk("one", 10), chunk("two", 5)]
    record, version = await upload(repo, "alice", "docs/a.txt", chunks, mode=Mode.HYBRID)

    assert record.owner == "alice"
    assert record.path == "docs/a.txt"
    assert record.current_version == 1
    assert record.size == 15
    assert record.mode is Mode.HYBRID
    assert version.mode is Mode.HYBRID
    assert len(record.file_id) == 32
    assert record.created_at <= record.updated_at
    assert version.file_id == record.file_id
    assert version.version == 1
    assert version.size == 15
    assert version.blake3 == record.blake3
    assert version.chunk_count == 2
    assert version.replicas_acked == 1
    assert version.etag == f'"{record.blake3}"'


async def test_second_commit_creates_version_two_of_same_file(
    repo: MetadataRepository,
) -> None:
    first, v1 = await upload(repo, "alice", "a.txt", [chunk("v1", 10)])
    second, v2 = await upload(repo, "alice", "a.txt", [chunk("v2", 20)])

    assert v1.version == 1
    assert v2.version == 2
    assert second.file_id == first.file_id == v2.file_id
    assert second.current_version == 2
    assert second.size == 20
    assert second.created_at == first.created_at
    assert second.updated_at >= first.updated_at

    current = await repo.get_file(first.file_id)
    assert current.current_version == 2
    assert current.size == 20
    assert current.blake3 == v2.blake3
    assert (await repo.totals()).files == 1


async def test_commit_records_replicas(repo: MetadataRepository) -> None:
    a = chunk("a", replicas=("w1", "w2"))
    await upload(repo, chunks=[a])
    assert await repo.replicas(a.chunk_id) == ("w1", "w2")
    # A later upload that found more copies adds them; none are duplicated.
    await upload(repo, chunks=[chunk("a", replicas=("w2", "w3"))])
    assert await repo.replicas(a.chunk_id) == ("w1", "w2", "w3")


async def test_commit_of_an_unclaimed_chunk_is_refused(repo: MetadataRepository) -> None:
    with pytest.raises(Conflict):
        await upload(repo, "alice", "f", [chunk("never-claimed")], claim=False)
    with pytest.raises(NotFound):
        await repo.find_file("alice", "f")
    assert await repo.totals() == StoreTotals(0, 0, 0, 0)


async def test_group_commit_numbers_in_order_and_refuses_only_the_bad_request(
    repo: MetadataRepository,
) -> None:
    good = [chunk("g1"), chunk("g2"), chunk("g3")]
    await repo.claim_chunks(good)
    outcomes = await repo.commit_versions([
        request("alice", "same", [good[0]], versions_kept=2),
        request("alice", "bad", [chunk("never-claimed")], versions_kept=2),
        request("alice", "same", [good[1]], versions_kept=2),
        request("bob", "same", [good[2]], versions_kept=2),
        request("alice", "same", [good[2]], versions_kept=2),
    ])
    assert isinstance(outcomes[1], Conflict)
    numbers = [(o[0].owner, o[0].path, o[1].version) for o in outcomes
               if not isinstance(o, Conflict)]
    assert numbers == [("alice", "same", 1), ("alice", "same", 2), ("bob", "same", 1),
                       ("alice", "same", 3)]
    with pytest.raises(NotFound):
        await repo.find_file("alice", "bad")
    current = await repo.find_file("alice", "same")
    assert current.current_version == 3
    # versions_kept=2 pruned version 1 in the same transaction.
    assert [v.version for v in await repo.list_versions(current.file_id)] == [3, 2]
    version = await repo.get_version(current.file_id)
    assert [c.chunk_id for c in version.chunks] == [good[2].chunk_id]


# -- versions_kept ------------------------------------------------------------

async def test_versions_kept_prunes_the_oldest(repo: MetadataRepository) -> None:
    record = None
    for i in range(7):
        record, version = await upload(
            repo, "alice", "f", [chunk(f"v{i + 1}", 10 + i)], versions_kept=5
        )
        assert version.version == i + 1
    assert record is not None

    versions = await repo.list_versions(record.file_id)

    assert [v.version for v in versions] == [7, 6, 5, 4, 3]
    with pytest.raises(NotFound):
        await repo.get_version(record.file_id, 2)
    with pytest.raises(NotFound):
        await repo.get_version(record.file_id, 1)
    assert (await repo.get_version(record.file_id, 3)).size == 12
    assert (await repo.get_file(record.file_id)).current_version == 7
    assert (await repo.totals()).versions == 5
    # The pruned versions' chunks are no longer referenced: garbage.
    assert sorted(await repo.claim_garbage(future())) == sorted([cid("v1"), cid("v2")])


async def test_versions_kept_one_keeps_only_the_current(repo: MetadataRepository) -> None:
    record, _ = await upload(repo, "alice", "f", [chunk("x")], versions_kept=1)
    record, _ = await upload(repo, "alice", "f", [chunk("y")], versions_kept=1)
    assert [v.version for v in await repo.list_versions(record.file_id)] == [2]


# -- concurrency --------------------------------------------------------------

async def test_concurrent_commits_get_distinct_versions(repo: MetadataRepository) -> None:
    chunks = [chunk(f"c{i}", i + 1) for i in range(10)]
    await repo.claim_chunks(chunks)

    results = await asyncio.gather(
        *(upload(repo, "alice", "hot", [c], claim=False) for c in chunks)
    )

    numbers = sorted(version.version for _, version in results)
    assert numbers == list(range(1, 11))
    assert len({record.file_id for record, _ in results}) == 1
    file_id = results[0][0].file_id
    assert [v.version for v in await repo.list_versions(file_id)] == list(range(10, 0, -1))
    assert (await repo.get_file(file_id)).current_version == 10
    # Each version kept the manifest of the upload that created it.
    for _, version in results:
        got = await repo.get_version(file_id, version.version)
        assert got.blake3 == version.blake3
        assert len(got.chunks) == 1
        assert got.size == got.chunks[0].size
    assert (await repo.totals()).files == 1


async def test_concurrent_first_commits_to_many_files(repo: MetadataRepository) -> None:
    chunks = [chunk(f"c{i}") for i in range(10)]
    await repo.claim_chunks(chunks)
    results = await asyncio.gather(
        *(upload(repo, "alice", f"f{i % 2}", [c], claim=False) for i, c in enumerate(chunks))
    )
    by_path: dict[str, list[int]] = {}
    for record, version in results:
        by_path.setdefault(record.path, []).append(version.version)
    assert {p: sorted(v) for p, v in by_path.items()} == {
        "f0": [1, 2, 3, 4, 5],
        "f1": [1, 2, 3, 4, 5],
    }


async def test_concurrent_mixed_writers(repo: MetadataRepository) -> None:
    """Commits, deletes and collection interleave without errors or lost updates."""
    record = None
    for i in range(4):
        record, _ = await upload(repo, "alice", "mixed", [chunk(f"old{i}")])
    assert record is not None
    await asyncio.sleep(0.02)
    cutoff = time.time()  # old chunks are past the grace period, fresh ones are not
    await asyncio.sleep(0.02)
    fresh = [chunk(f"new{i}") for i in range(6)]
    await repo.claim_chunks(fresh)

    await asyncio.gather(
        *(upload(repo, "alice", "mixed", [c], claim=False) for c in fresh),
        repo.delete_file(record.file_id, version=2),
        repo.delete_file(record.file_id, version=3),
        repo.claim_garbage(cutoff),
        repo.claim_chunks([chunk("orphan")]),
    )

    versions = [v.version for v in await repo.list_versions(record.file_id)]
    assert versions == [10, 9, 8, 7, 6, 5, 4, 1]
    assert (await repo.get_file(record.file_id)).current_version == 10
    for c in fresh:
        assert await repo.chunk_state(c.chunk_id) == "live"


async def test_delete_racing_commits_to_the_same_name(repo: MetadataRepository) -> None:
    """A whole-file delete and new uploads of the name at once: every call
    succeeds, and what remains is a file of consecutive versions (or none)."""
    for round_no in range(10):
        record, _ = await upload(repo, "alice", "racy", [chunk(f"base{round_no}")])
        fresh = [chunk(f"r{round_no}-{i}") for i in range(4)]
        await repo.claim_chunks(fresh)

        await asyncio.gather(
            repo.delete_file(record.file_id),
            *(upload(repo, "alice", "racy", [c], claim=False) for c in fresh),
        )

        try:
            survivor = await repo.find_file("alice", "racy")
        except NotFound:
            continue  # the delete came after every commit
        versions = [v.version for v in await repo.list_versions(survivor.file_id)]
        assert versions == list(range(survivor.current_version, 0, -1))
        await repo.delete_file(survivor.file_id)


async def test_commits_sharing_chunks_in_different_orders(repo: MetadataRepository) -> None:
    """Uploads that reuse the same chunks, listed in different orders, lock
    them in one order: no deadlock, every commit succeeds."""
    shared = [chunk(f"shared{i}") for i in range(40)]
    await repo.claim_chunks(shared)

    async def one(i: int) -> tuple[FileRecord, VersionRecord]:
        order = shared[i:] + shared[:i] if i % 2 else list(reversed(shared))
        await repo.claim_chunks(order)
        return await upload(repo, "alice", f"f{i}", order, claim=False)

    results = await asyncio.gather(*(one(i) for i in range(24)))

    assert len({record.file_id for record, _ in results}) == 24
    assert (await repo.totals()).chunks == 40


async def test_claims_and_commits_of_different_uploads_share_one_transaction(
        repo: MetadataRepository) -> None:
    """One upload's claims and another's commit, together: each gets what it
    would have got alone, and the committed version reads back whole."""
    done = chunk("done")
    await repo.claim_chunks([done])
    fresh, known = chunk("fresh"), chunk("known", replicas=("w2",))
    await repo.claim_chunks([known])
    await repo.commit_versions([request("alice", "known.txt", [known])])

    claims, [outcome] = await repo.claim_and_commit(
        [fresh, known], [request("alice", "done.txt", [done])])

    assert claims[fresh.chunk_id].replicas == ()
    assert claims[known.chunk_id].replicas == ("w2",)
    assert not isinstance(outcome, Exception)
    record, version = outcome
    assert (record.path, version.version) == ("done.txt", 1)
    found = await repo.get_version(record.file_id)
    assert [c.chunk_id for c in found.chunks] == [done.chunk_id]
    assert found.chunks[0].replicas == ("w1",)
