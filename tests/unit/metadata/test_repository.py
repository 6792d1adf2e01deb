"""The metadata repository's contract, on a database migrated by Alembic.

Chunk ids are made up (blake3 of a name); no worker or chunk bytes exist here.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

import blake3 as blake3_lib
import pytest
from sqlalchemy import func, select

from echofs.core.errors import Conflict, NotFound
from echofs.core.manifest import FileRecord, NewChunk, VersionRecord
from echofs.metadata.models import ChunkReplicaRow, ChunkRow, ReplicationTaskRow
from echofs.metadata.repository import CommitRequest, MetadataRepository, StoreTotals

FAR_FUTURE_OFFSET = 3600.0


def cid(name: str) -> str:
    """A made-up, well-formed chunk id."""
    return blake3_lib.blake3(name.encode()).hexdigest()


def chunk(
    name: str,
    size: int = 100,
    *,
    stored_size: int | None = None,
    compressed: bool = False,
    replicas: Sequence[str] = ("w1",),
) -> NewChunk:
    return NewChunk(
        chunk_id=cid(name),
        size=size,
        stored_size=size if stored_size is None else stored_size,
        compressed=compressed,
        replicas=tuple(replicas),
    )


async def upload(
    repo: MetadataRepository,
    owner: str = "alice",
    path: str = "file.txt",
    chunks: Sequence[NewChunk] | None = None,
    *,
    versions_kept: int = 10,
    mode: str = "quorum",
    claim: bool = True,
) -> tuple[FileRecord, VersionRecord]:
    """What an upload does: claim its chunks, then commit the version."""
    if chunks is None:
        chunks = [chunk(f"{owner}/{path}/{time.monotonic_ns()}")]
    if claim:
        await repo.claim_chunks(chunks)
    size = sum(c.size for c in chunks)
    digest = blake3_lib.blake3("".join(c.chunk_id for c in chunks).encode()).hexdigest()
    return await repo.commit_version(
        owner=owner,
        path=path,
        chunks=chunks,
        size=size,
        blake3=digest,
        mode=mode,
        replicas_acked=max((len(c.replicas) for c in chunks), default=0),
        versions_kept=versions_kept,
    )


async def scalar(repo: MetadataRepository, statement):  # type: ignore[no-untyped-def]
    async with repo.engine.connect() as conn:
        return (await conn.execute(statement)).scalar_one_or_none()


def future() -> float:
    return time.time() + FAR_FUTURE_OFFSET


# -- claim_chunks ------------------------------------------------------------------


async def test_claim_chunks_creates_live_rows(repo: MetadataRepository) -> None:
    a, b = chunk("a", 10, stored_size=7, compressed=True), chunk("b", 20)
    assert await repo.chunk_state(a.chunk_id) is None

    claims = await repo.claim_chunks([a, b])

    assert set(claims) == {a.chunk_id, b.chunk_id}
    for c in (a, b):
        assert claims[c.chunk_id].chunk_id == c.chunk_id
        assert claims[c.chunk_id].state == "live"
        assert claims[c.chunk_id].replicas == ()
        assert await repo.chunk_state(c.chunk_id) == "live"
    assert await repo.totals() == StoreTotals(files=0, versions=0, chunks=2, stored_bytes=27)


async def test_claim_chunks_with_no_chunks(repo: MetadataRepository) -> None:
    assert await repo.claim_chunks([]) == {}
    assert (await repo.totals()).chunks == 0


async def test_claim_chunks_deduplicates_within_a_request(repo: MetadataRepository) -> None:
    a = chunk("a", 10)
    claims = await repo.claim_chunks([a, a, a])
    assert list(claims) == [a.chunk_id]
    assert (await repo.totals()).chunks == 1


async def test_claim_chunks_reports_existing_replicas(repo: MetadataRepository) -> None:
    known = chunk("known", replicas=("w2", "w1"))
    await upload(repo, chunks=[known])
    await repo.add_replicas(known.chunk_id, ["w3"])
    fresh = chunk("fresh")

    claims = await repo.claim_chunks([known, fresh])

    assert claims[known.chunk_id].state == "live"
    assert claims[known.chunk_id].replicas == ("w1", "w2", "w3")
    assert claims[fresh.chunk_id].replicas == ()
    # Claiming a known chunk does not duplicate its row.
    assert (await repo.totals()).chunks == 2


async def test_claim_chunks_touches_known_chunks(repo: MetadataRepository) -> None:
    a = chunk("a")
    await repo.claim_chunks([a])
    first = await scalar(repo, select(ChunkRow.touched_at).where(ChunkRow.id == a.chunk_id))
    await asyncio.sleep(0.02)
    middle = time.time()
    await asyncio.sleep(0.02)

    await repo.claim_chunks([a])

    touched = await scalar(repo, select(ChunkRow.touched_at).where(ChunkRow.id == a.chunk_id))
    assert first < middle < touched
    # ...so a collector whose grace period ends between the two claims leaves it alone.
    assert await repo.claim_garbage(middle) == []
    assert await repo.chunk_state(a.chunk_id) == "live"


async def test_claim_chunks_reports_a_collected_chunk(repo: MetadataRepository) -> None:
    a = chunk("a")
    await repo.claim_chunks([a])
    assert await repo.claim_garbage(future()) == [a.chunk_id]

    claims = await repo.claim_chunks([a])

    # A claimed chunk is not revived: the upload must write it anew after GC.
    assert claims[a.chunk_id].state == "deleting"
    assert await repo.chunk_state(a.chunk_id) == "deleting"


# -- commit_version and reads --------------------------------------------------------


async def test_first_commit_creates_version_one(repo: MetadataRepository) -> None:
    chunks = [chunk("one", 10), chunk("two", 5)]
    record, version = await upload(repo, "alice", "docs/a.txt", chunks, mode="all")

    assert record.owner == "alice"
    assert record.path == "docs/a.txt"
    assert record.current_version == 1
    assert record.size == 15
    assert record.mode == "all"
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


async def test_same_path_different_owners_are_different_files(
    repo: MetadataRepository,
) -> None:
    alice, _ = await upload(repo, "alice", "shared.txt", [chunk("a", 1)])
    bob, bob_v = await upload(repo, "bob", "shared.txt", [chunk("b", 2)])

    assert alice.file_id != bob.file_id
    assert bob_v.version == 1
    assert (await repo.find_file("alice", "shared.txt")).file_id == alice.file_id
    assert (await repo.find_file("bob", "shared.txt")).file_id == bob.file_id
    assert (await repo.find_file("bob", "shared.txt")).size == 2
    assert (await repo.get_file(alice.file_id, owner="alice")).current_version == 1
    with pytest.raises(NotFound):
        await repo.get_file(alice.file_id, owner="bob")
    with pytest.raises(NotFound):
        await repo.find_file("carol", "shared.txt")


async def test_find_and_get_unknown_file(repo: MetadataRepository) -> None:
    with pytest.raises(NotFound):
        await repo.find_file("alice", "nope")
    with pytest.raises(NotFound):
        await repo.get_file("0" * 32)
    with pytest.raises(NotFound):
        await repo.get_version("0" * 32)
    with pytest.raises(NotFound):
        await repo.list_versions("0" * 32)


async def test_find_file_is_exact_about_the_path(repo: MetadataRepository) -> None:
    await upload(repo, "alice", "Readme", [chunk("r")])
    with pytest.raises(NotFound):
        await repo.find_file("alice", "readme")
    with pytest.raises(NotFound):
        await repo.find_file("alice", "Readm")


async def test_get_version_returns_manifest_in_order(repo: MetadataRepository) -> None:
    chunks = [
        chunk("c0", 100, stored_size=60, compressed=True, replicas=("w2", "w1")),
        chunk("c1", 50, replicas=("w3",)),
        chunk("c2", 7, replicas=()),
    ]
    record, _ = await upload(repo, "alice", "big.bin", chunks)
    await repo.add_replicas(chunks[2].chunk_id, ["w4"])

    version = await repo.get_version(record.file_id)

    assert version.version == 1
    assert version.size == 157
    assert version.chunk_count == 3
    assert [c.seq for c in version.chunks] == [0, 1, 2]
    assert [c.chunk_id for c in version.chunks] == [c.chunk_id for c in chunks]
    assert [c.offset for c in version.chunks] == [0, 100, 150]
    assert [c.size for c in version.chunks] == [100, 50, 7]
    assert [c.compressed for c in version.chunks] == [True, False, False]
    assert [c.replicas for c in version.chunks] == [("w1", "w2"), ("w3",), ("w4",)]


async def test_get_version_of_a_file_that_repeats_a_chunk(repo: MetadataRepository) -> None:
    zeros = chunk("zeros", 64)
    other = chunk("other", 10)
    record, version = await upload(repo, "alice", "sparse", [zeros, other, zeros])

    assert version.chunk_count == 3
    got = await repo.get_version(record.file_id)
    assert [c.chunk_id for c in got.chunks] == [zeros.chunk_id, other.chunk_id, zeros.chunk_id]
    assert [c.offset for c in got.chunks] == [0, 64, 74]
    assert (await repo.totals()).chunks == 2


async def test_get_version_of_an_empty_file(repo: MetadataRepository) -> None:
    record, version = await upload(repo, "alice", "empty", [])
    assert version.version == 1
    assert record.size == 0
    got = await repo.get_version(record.file_id)
    assert got.chunks == ()
    assert got.chunk_count == 0


async def test_get_version_by_number(repo: MetadataRepository) -> None:
    old = [chunk("old-0", 3), chunk("old-1", 4)]
    record, _ = await upload(repo, "alice", "f", old)
    await upload(repo, "alice", "f", [chunk("new", 9)])

    v1 = await repo.get_version(record.file_id, 1)
    v2 = await repo.get_version(record.file_id, 2)
    current = await repo.get_version(record.file_id)

    assert v1.version == 1
    assert v1.size == 7
    assert [c.chunk_id for c in v1.chunks] == [c.chunk_id for c in old]
    assert [c.offset for c in v1.chunks] == [0, 3]
    assert v2.version == current.version == 2
    assert [c.chunk_id for c in current.chunks] == [cid("new")]
    with pytest.raises(NotFound):
        await repo.get_version(record.file_id, 3)
    with pytest.raises(NotFound):
        await repo.get_version(record.file_id, 1, owner="bob")
    assert (await repo.get_version(record.file_id, 1, owner="alice")).version == 1


async def test_list_versions_newest_first(repo: MetadataRepository) -> None:
    sizes = [5, 6, 7]
    record = None
    for i, size in enumerate(sizes):
        record, _ = await upload(repo, "alice", "f", [chunk(f"v{i}", size)])
    assert record is not None

    versions = await repo.list_versions(record.file_id)

    assert [v.version for v in versions] == [3, 2, 1]
    assert [v.size for v in versions] == [7, 6, 5]
    assert all(v.file_id == record.file_id for v in versions)
    assert versions[0].created_at >= versions[-1].created_at
    with pytest.raises(NotFound):
        await repo.list_versions(record.file_id, owner="bob")
    assert len(await repo.list_versions(record.file_id, owner="alice")) == 3


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


# -- versions_kept -----------------------------------------------------------------


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


# -- delete_file -------------------------------------------------------------------


async def test_delete_whole_file(repo: MetadataRepository) -> None:
    record, _ = await upload(repo, "alice", "f", [chunk("a")])
    await upload(repo, "alice", "f", [chunk("b")])

    assert await repo.delete_file(record.file_id) == 2

    with pytest.raises(NotFound):
        await repo.get_file(record.file_id)
    with pytest.raises(NotFound):
        await repo.find_file("alice", "f")
    with pytest.raises(NotFound):
        await repo.list_versions(record.file_id)
    with pytest.raises(NotFound):
        await repo.delete_file(record.file_id)
    totals = await repo.totals()
    assert (totals.files, totals.versions) == (0, 0)


async def test_upload_after_delete_starts_a_new_file(repo: MetadataRepository) -> None:
    record, _ = await upload(repo, "alice", "f", [chunk("a")])
    await upload(repo, "alice", "f", [chunk("b")])
    await repo.delete_file(record.file_id)

    again, version = await upload(repo, "alice", "f", [chunk("c")])

    assert version.version == 1
    assert again.file_id != record.file_id


async def test_delete_current_version_falls_back(repo: MetadataRepository) -> None:
    record = None
    for i in range(3):
        record, _ = await upload(repo, "alice", "f", [chunk(f"v{i + 1}", 10 * (i + 1))])
    assert record is not None

    assert await repo.delete_file(record.file_id, version=3) == 1

    current = await repo.get_file(record.file_id)
    assert current.current_version == 2
    assert current.size == 20
    assert (await repo.get_version(record.file_id)).version == 2
    assert [v.version for v in await repo.list_versions(record.file_id)] == [2, 1]

    # The next upload continues after the highest remaining version.
    _, version = await upload(repo, "alice", "f", [chunk("v-next")])
    assert version.version == 3


async def test_delete_older_version_keeps_current(repo: MetadataRepository) -> None:
    record = None
    for i in range(3):
        record, _ = await upload(repo, "alice", "f", [chunk(f"v{i + 1}", 10 * (i + 1))])
    assert record is not None

    await repo.delete_file(record.file_id, version=2)

    assert (await repo.get_file(record.file_id)).current_version == 3
    assert [v.version for v in await repo.list_versions(record.file_id)] == [3, 1]
    with pytest.raises(NotFound):
        await repo.get_version(record.file_id, 2)
    with pytest.raises(NotFound):
        await repo.delete_file(record.file_id, version=2)


async def test_delete_version_that_never_existed(repo: MetadataRepository) -> None:
    record, _ = await upload(repo, "alice", "f", [chunk("a")])
    with pytest.raises(NotFound):
        await repo.delete_file(record.file_id, version=5)
    assert (await repo.get_file(record.file_id)).current_version == 1


async def test_delete_only_version_removes_the_file(repo: MetadataRepository) -> None:
    record, _ = await upload(repo, "alice", "f", [chunk("a")])

    assert await repo.delete_file(record.file_id, version=1) == 1

    with pytest.raises(NotFound):
        await repo.get_file(record.file_id)
    with pytest.raises(NotFound):
        await repo.find_file("alice", "f")
    assert await repo.list_files(owner=None) == []
    assert (await repo.totals()).files == 0


async def test_delete_with_wrong_owner_is_not_found(repo: MetadataRepository) -> None:
    record, _ = await upload(repo, "alice", "f", [chunk("a")])

    with pytest.raises(NotFound):
        await repo.delete_file(record.file_id, owner="bob")
    with pytest.raises(NotFound):
        await repo.delete_file(record.file_id, owner="bob", version=1)

    assert (await repo.get_file(record.file_id)).current_version == 1
    assert await repo.delete_file(record.file_id, owner="alice") == 1
    with pytest.raises(NotFound):
        await repo.get_file(record.file_id)


# -- list_files --------------------------------------------------------------------


async def test_list_files_ordered_by_path(repo: MetadataRepository) -> None:
    for path in ["b", "c/d", "a", "c", "B"]:
        await upload(repo, "alice", path, [chunk(path, len(path))])

    files = await repo.list_files(owner="alice")

    # Byte order: upper case sorts before lower case.
    assert [f.path for f in files] == ["B", "a", "b", "c", "c/d"]
    assert [f.size for f in files] == [1, 1, 1, 1, 3]
    assert all(f.current_version == 1 for f in files)


async def test_list_files_shows_the_current_version(repo: MetadataRepository) -> None:
    await upload(repo, "alice", "f", [chunk("one", 1)])
    _, v2 = await upload(repo, "alice", "f", [chunk("two", 2)])
    [listed] = await repo.list_files(owner="alice")
    assert (listed.current_version, listed.size, listed.blake3) == (2, 2, v2.blake3)


async def test_list_files_prefix_is_case_sensitive(repo: MetadataRepository) -> None:
    for path in ["Docs/x", "docs/y", "docs/z", "doc", "other"]:
        await upload(repo, "alice", path, [chunk(path)])

    assert [f.path for f in await repo.list_files(owner="alice", prefix="docs/")] == [
        "docs/y",
        "docs/z",
    ]
    assert [f.path for f in await repo.list_files(owner="alice", prefix="Docs/")] == ["Docs/x"]
    assert [f.path for f in await repo.list_files(owner="alice", prefix="DOCS")] == []


async def test_list_files_prefix_wildcards_are_literal(repo: MetadataRepository) -> None:
    for path in ["a_b", "axb", "a%c", "abc", "a\\d"]:
        await upload(repo, "alice", path, [chunk(path)])

    assert [f.path for f in await repo.list_files(owner="alice", prefix="a_")] == ["a_b"]
    assert [f.path for f in await repo.list_files(owner="alice", prefix="a%")] == ["a%c"]
    assert [f.path for f in await repo.list_files(owner="alice", prefix="a\\")] == ["a\\d"]
    assert len(await repo.list_files(owner="alice", prefix="a")) == 5


async def test_list_files_prefix_with_non_ascii(repo: MetadataRepository) -> None:
    for path in ["über/1", "über/2", "uber/3", "ü"]:
        await upload(repo, "alice", path, [chunk(path)])
    listed = await repo.list_files(owner="alice", prefix="über/")
    assert [f.path for f in listed] == ["über/1", "über/2"]


async def test_list_files_owner_filter(repo: MetadataRepository) -> None:
    await upload(repo, "alice", "a1", [chunk("a1")])
    await upload(repo, "alice", "shared", [chunk("a-shared")])
    await upload(repo, "bob", "shared", [chunk("b-shared")])
    await upload(repo, "bob", "b1", [chunk("b1")])

    assert [f.path for f in await repo.list_files(owner="alice")] == ["a1", "shared"]
    assert [f.path for f in await repo.list_files(owner="bob")] == ["b1", "shared"]
    assert await repo.list_files(owner="carol") == []
    everything = await repo.list_files(owner=None)
    assert [(f.path, f.owner) for f in everything] == [
        ("a1", "alice"),
        ("b1", "bob"),
        ("shared", "alice"),
        ("shared", "bob"),
    ]


async def test_list_files_pagination_returns_each_file_once(repo: MetadataRepository) -> None:
    expected = []
    for owner in ["bob", "alice", "carol"]:
        for path in ["x", "a/1", "a/2", "m"]:
            await upload(repo, owner, path, [chunk(f"{owner}:{path}")])
            expected.append((path, owner))
    expected.sort()

    for limit in (1, 3, 5, 100):
        seen: list[tuple[str, str]] = []
        after = None
        for _ in range(len(expected) + 2):
            page = await repo.list_files(owner=None, after=after, limit=limit)
            assert len(page) <= limit
            if not page:
                break
            seen.extend((f.path, f.owner) for f in page)
            after = (page[-1].path, page[-1].owner)
        assert seen == expected, f"limit={limit}"


async def test_list_files_pagination_with_owner_and_prefix(repo: MetadataRepository) -> None:
    for owner in ["alice", "bob"]:
        for i in range(5):
            await upload(repo, owner, f"logs/{i}", [chunk(f"{owner}:logs/{i}")])
        await upload(repo, owner, "misc", [chunk(f"{owner}:misc")])

    seen: list[str] = []
    after = None
    for _ in range(10):
        page = await repo.list_files(owner="bob", prefix="logs/", after=after, limit=2)
        if not page:
            break
        assert all(f.owner == "bob" for f in page)
        seen.extend(f.path for f in page)
        after = (page[-1].path, page[-1].owner)
    assert seen == [f"logs/{i}" for i in range(5)]


# -- garbage collection --------------------------------------------------------------


async def test_claim_garbage_takes_only_unreferenced_untouched_chunks(
    repo: MetadataRepository,
) -> None:
    before = time.time()
    await asyncio.sleep(0.01)
    orphan, used = chunk("orphan"), chunk("used")
    await repo.claim_chunks([orphan])
    await upload(repo, "alice", "f", [used])

    # Both were touched after the cutoff: nothing is old enough.
    assert await repo.claim_garbage(before) == []
    assert await repo.chunk_state(orphan.chunk_id) == "live"

    # With the cutoff in the future only the unreferenced chunk is garbage.
    assert await repo.claim_garbage(future()) == [orphan.chunk_id]
    assert await repo.chunk_state(orphan.chunk_id) == "deleting"
    assert await repo.chunk_state(used.chunk_id) == "live"


async def test_referenced_chunk_is_never_claimed(repo: MetadataRepository) -> None:
    used = chunk("used")
    record, _ = await upload(repo, "alice", "f", [used])
    # Still referenced by version 1 after version 2 replaced it.
    await upload(repo, "alice", "f", [chunk("other")])
    # And by another file.
    await upload(repo, "bob", "g", [used])

    for _ in range(2):
        assert used.chunk_id not in await repo.claim_garbage(future())
    assert await repo.chunk_state(used.chunk_id) == "live"

    await repo.delete_file(record.file_id)
    # Alice's second version's chunk is garbage now; bob's file still holds `used`.
    assert await repo.claim_garbage(future()) == [cid("other")]
    assert await repo.chunk_state(used.chunk_id) == "live"


async def test_chunk_of_deleted_file_becomes_claimable(repo: MetadataRepository) -> None:
    a, b = chunk("a"), chunk("b")
    record, _ = await upload(repo, "alice", "f", [a, b])
    assert await repo.claim_garbage(future()) == []

    await repo.delete_file(record.file_id)

    assert sorted(await repo.claim_garbage(future())) == sorted([a.chunk_id, b.chunk_id])
    assert await repo.chunk_state(a.chunk_id) == "deleting"
    assert await repo.chunk_state(b.chunk_id) == "deleting"


async def test_chunk_of_deleted_version_becomes_claimable(repo: MetadataRepository) -> None:
    shared, only_v1 = chunk("shared"), chunk("only-v1")
    record, _ = await upload(repo, "alice", "f", [shared, only_v1])
    await upload(repo, "alice", "f", [shared])

    await repo.delete_file(record.file_id, version=1)

    assert await repo.claim_garbage(future()) == [only_v1.chunk_id]
    assert await repo.chunk_state(shared.chunk_id) == "live"


async def test_commit_touches_its_chunks(repo: MetadataRepository) -> None:
    a = chunk("a")
    await repo.claim_chunks([a])
    await asyncio.sleep(0.02)
    middle = time.time()
    await asyncio.sleep(0.02)
    record, _ = await upload(repo, "alice", "f", [a], claim=False)
    await repo.delete_file(record.file_id)

    # Touched by the commit, after the cutoff: within the grace period.
    assert await repo.claim_garbage(middle) == []
    assert await repo.claim_garbage(future()) == [a.chunk_id]


async def test_commit_using_a_claimed_chunk_raises_conflict(repo: MetadataRepository) -> None:
    record, _ = await upload(repo, "alice", "f", [chunk("v1")])
    doomed = chunk("doomed")
    await repo.claim_chunks([doomed])
    assert await repo.claim_garbage(future()) == [doomed.chunk_id]
    good = chunk("good")
    await repo.claim_chunks([good])

    with pytest.raises(Conflict) as raised:
        await upload(repo, "alice", "f", [good, doomed], claim=False)
    assert raised.value.code == "chunk_collected"
    assert raised.value.status == 409

    # Nothing of the failed commit is visible.
    assert (await repo.get_file(record.file_id)).current_version == 1
    assert [v.version for v in await repo.list_versions(record.file_id)] == [1]
    assert await repo.chunk_state(doomed.chunk_id) == "deleting"
    with pytest.raises(Conflict):
        await upload(repo, "alice", "new-file", [doomed], claim=False)
    with pytest.raises(NotFound):
        await repo.find_file("alice", "new-file")


async def test_forget_chunks_removes_rows_and_replicas(repo: MetadataRepository) -> None:
    a, keep = chunk("a", replicas=("w1", "w2")), chunk("keep", replicas=("w1",))
    record, _ = await upload(repo, "alice", "f", [a])
    await upload(repo, "alice", "g", [keep])
    await repo.enqueue_replication(a.chunk_id, "w3", "under_replicated")
    await repo.delete_file(record.file_id)
    assert await repo.claim_garbage(future()) == [a.chunk_id]

    await repo.forget_chunks([a.chunk_id])

    assert await repo.chunk_state(a.chunk_id) is None
    assert await repo.replicas(a.chunk_id) == ()
    assert (
        await scalar(
            repo,
            select(func.count())
            .select_from(ChunkReplicaRow)
            .where(ChunkReplicaRow.chunk_id == a.chunk_id),
        )
        == 0
    )
    assert await repo.due_replications() == []
    assert await repo.replication_backlog() == (0, None)
    # Other chunks are untouched.
    assert await repo.chunk_state(keep.chunk_id) == "live"
    assert await repo.replicas(keep.chunk_id) == ("w1",)
    assert (await repo.totals()).chunks == 1
    # Nothing is left to collect.
    assert await repo.claim_garbage(future()) == []


async def test_forget_chunks_with_no_chunks(repo: MetadataRepository) -> None:
    await repo.claim_chunks([chunk("a")])
    await repo.forget_chunks([])
    assert await repo.chunk_state(cid("a")) == "live"


async def test_claimed_chunks_are_returned_again_until_forgotten(
    repo: MetadataRepository,
) -> None:
    a = chunk("a")
    await repo.claim_chunks([a])
    assert await repo.claim_garbage(future()) == [a.chunk_id]

    # The collector died before forgetting: the next pass resumes the claim,
    # whatever its cutoff.
    assert await repo.claim_garbage(future()) == [a.chunk_id]
    assert await repo.claim_garbage(0.0) == [a.chunk_id]

    await repo.forget_chunks([a.chunk_id])
    assert await repo.claim_garbage(future()) == []


async def test_claim_garbage_respects_limit_across_passes(repo: MetadataRepository) -> None:
    orphans = [chunk(f"orphan-{i}") for i in range(5)]
    await repo.claim_chunks(orphans)

    collected: list[str] = []
    for _ in range(10):
        claimed = await repo.claim_garbage(future(), limit=2)
        assert len(claimed) <= 2
        if not claimed:
            break
        collected.extend(claimed)
        await repo.forget_chunks(claimed)

    assert sorted(collected) == sorted(c.chunk_id for c in orphans)
    assert (await repo.totals()).chunks == 0


# -- concurrency -------------------------------------------------------------------


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


# -- replication queue -------------------------------------------------------------


async def test_enqueue_replication_of_a_collected_chunk_queues_nothing(
    repo: MetadataRepository,
) -> None:
    """A scrub or read that raced the collector asks for a copy of a chunk
    whose row is gone: nothing is owed, nothing fails."""
    await repo.enqueue_replication(cid("collected meanwhile"), "w2", "scrub_missing")
    depth, _ = await repo.replication_backlog()
    assert depth == 0


async def test_enqueue_replication_is_idempotent(repo: MetadataRepository) -> None:
    a = chunk("a")
    await upload(repo, chunks=[a])
    before = time.time()

    await repo.enqueue_replication(a.chunk_id, "w2", "hinted_handoff")
    await repo.enqueue_replication(a.chunk_id, "w2", "read_repair")

    [task] = await repo.due_replications()
    assert task.chunk_id == a.chunk_id
    assert task.target_worker == "w2"
    assert task.reason == "hinted_handoff"
    assert task.attempts == 0
    assert before <= task.created_at <= time.time()
    assert await repo.replication_backlog() == (1, task.created_at)


async def test_replication_tasks_per_worker(repo: MetadataRepository) -> None:
    a, b = chunk("a"), chunk("b")
    await upload(repo, chunks=[a, b])
    await repo.enqueue_replication(a.chunk_id, "w2", "x")
    await asyncio.sleep(0.01)
    await repo.enqueue_replication(a.chunk_id, "w3", "x")
    await repo.enqueue_replication(b.chunk_id, "w2", "x")

    due = await repo.due_replications()
    assert sorted((t.chunk_id, t.target_worker) for t in due) == sorted(
        [(a.chunk_id, "w2"), (a.chunk_id, "w3"), (b.chunk_id, "w2")]
    )
    assert len({t.task_id for t in due}) == 3
    assert len(await repo.due_replications(limit=2)) == 2
    depth, oldest = await repo.replication_backlog()
    assert depth == 3
    assert oldest == min(t.created_at for t in due)
    first = next(t for t in due if (t.chunk_id, t.target_worker) == (a.chunk_id, "w2"))
    assert oldest == first.created_at
    assert all(oldest < t.created_at for t in due if t is not first)


async def test_retry_replication_postpones_and_counts(repo: MetadataRepository) -> None:
    a = chunk("a")
    await upload(repo, chunks=[a])
    await repo.enqueue_replication(a.chunk_id, "w2", "hinted_handoff")
    [task] = await repo.due_replications()

    await repo.retry_replication(task, delay=60)

    assert await repo.due_replications() == []
    attempts = select(ReplicationTaskRow.attempts).where(ReplicationTaskRow.id == task.task_id)
    assert await scalar(repo, attempts) == 1
    due_at = select(ReplicationTaskRow.next_attempt_at).where(ReplicationTaskRow.id == task.task_id)
    assert await scalar(repo, due_at) >= time.time() + 50
    # Still queued, still counted, still the oldest.
    assert await repo.replication_backlog() == (1, task.created_at)

    await repo.retry_replication(task, delay=0)
    [again] = await repo.due_replications()
    assert again.task_id == task.task_id
    assert again.attempts == 2
    assert again.created_at == task.created_at


async def test_complete_replication(repo: MetadataRepository) -> None:
    a = chunk("a", replicas=("w1",))
    await upload(repo, chunks=[a])
    await repo.enqueue_replication(a.chunk_id, "w2", "under_replicated")
    [task] = await repo.due_replications()

    await repo.complete_replication(task)

    assert await repo.due_replications() == []
    assert await repo.replication_backlog() == (0, None)
    assert await repo.replicas(a.chunk_id) == ("w1", "w2")
    # Completing twice (a retried call) changes nothing.
    await repo.complete_replication(task)
    assert await repo.replicas(a.chunk_id) == ("w1", "w2")


async def test_replication_backlog_empty(repo: MetadataRepository) -> None:
    assert await repo.replication_backlog() == (0, None)


# -- replica_page ------------------------------------------------------------------


async def test_replica_page_walks_every_live_replica_once(repo: MetadataRepository) -> None:
    chunks = [
        chunk("p0", 10, stored_size=4, replicas=("w1", "w2", "w3")),
        chunk("p1", 20, replicas=("w2",)),
        chunk("p2", 30, stored_size=11, replicas=("w1", "w3")),
        chunk("p3", 40, replicas=()),
    ]
    await upload(repo, chunks=chunks)
    await repo.add_replicas(chunks[3].chunk_id, ["w9"])
    # A chunk being collected is not scrubbed.
    doomed = chunk("doomed", 5)
    await repo.claim_chunks([doomed])
    await repo.add_replicas(doomed.chunk_id, ["w1"])
    assert await repo.claim_garbage(future()) == [doomed.chunk_id]

    expected = sorted(
        (c.chunk_id, w, c.stored_size) for c in chunks for w in (c.replicas or ("w9",))
    )
    for limit in (1, 2, 3, 100):
        seen: list[tuple[str, str, int]] = []
        cursor = None
        for _ in range(len(expected) + 2):
            page = await repo.replica_page(cursor, limit)
            assert len(page) <= limit
            if not page:
                break
            seen.extend(page)
            cursor = (page[-1][0], page[-1][1])
        assert seen == expected, f"limit={limit}"
    last = expected[-1]
    assert await repo.replica_page((last[0], last[1]), 10) == []


async def test_replica_page_empty(repo: MetadataRepository) -> None:
    assert await repo.replica_page(None, 10) == []


async def test_remove_replica(repo: MetadataRepository) -> None:
    a = chunk("a", replicas=("w1", "w2"))
    await upload(repo, chunks=[a])
    await repo.remove_replica(a.chunk_id, "w1")
    assert await repo.replicas(a.chunk_id) == ("w2",)
    assert await repo.replica_page(None, 10) == [(a.chunk_id, "w2", a.stored_size)]


# -- totals ------------------------------------------------------------------------


async def test_totals(repo: MetadataRepository) -> None:
    assert await repo.totals() == StoreTotals(files=0, versions=0, chunks=0, stored_bytes=0)

    a = chunk("a", 100, stored_size=40, compressed=True)
    b = chunk("b", 50)
    await upload(repo, "alice", "f", [a, b])
    await upload(repo, "alice", "f", [a])  # dedup: `a` is stored once
    await upload(repo, "bob", "g", [b])
    await repo.claim_chunks([chunk("orphan", 7)])

    assert await repo.totals() == StoreTotals(files=2, versions=3, chunks=3, stored_bytes=97)

    record = await repo.find_file("bob", "g")
    await repo.delete_file(record.file_id)
    assert await repo.totals() == StoreTotals(files=1, versions=2, chunks=3, stored_bytes=97)


# -- group commit --------------------------------------------------------------------


def _request(owner: str, path: str, chunks: Sequence[NewChunk]) -> CommitRequest:
    digest = blake3_lib.blake3("".join(c.chunk_id for c in chunks).encode()).hexdigest()
    return CommitRequest(owner=owner, path=path, chunks=tuple(chunks),
                         size=sum(c.size for c in chunks), blake3=digest, mode="strong",
                         replicas_acked=1, versions_kept=2)


async def test_group_commit_numbers_in_order_and_refuses_only_the_bad_request(
    repo: MetadataRepository,
) -> None:
    good = [chunk("g1"), chunk("g2"), chunk("g3")]
    await repo.claim_chunks(good)
    outcomes = await repo.commit_versions([
        _request("alice", "same", [good[0]]),
        _request("alice", "bad", [chunk("never-claimed")]),
        _request("alice", "same", [good[1]]),
        _request("bob", "same", [good[2]]),
        _request("alice", "same", [good[2]]),
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


# -- the read memo of a sole writer ----------------------------------------------------


async def test_memoized_reads_follow_every_write(repo: MetadataRepository) -> None:
    repo.keep_read_answers()
    assert repo.memo is not None
    await upload(repo, "alice", "f", [chunk("m1")])
    first = await repo.find_file("alice", "f")
    assert await repo.find_file("alice", "f") is first  # served from memory
    assert repo.memo.hits == 2  # the commit wrote its answer through
    await upload(repo, "alice", "f", [chunk("m2")])
    second = await repo.find_file("alice", "f")
    assert second.current_version == 2
    version = await repo.get_version(second.file_id)
    assert version.chunks[0].replicas == ("w1",)
    await repo.add_replicas(chunk("m2").chunk_id, ["w2"])
    version = await repo.get_version(second.file_id)
    assert version.chunks[0].replicas == ("w1", "w2")
    await repo.delete_file(second.file_id, "alice")
    with pytest.raises(NotFound):
        await repo.find_file("alice", "f")


async def test_an_answer_read_across_a_write_is_not_kept(repo: MetadataRepository) -> None:
    repo.keep_read_answers()
    assert repo.memo is not None
    await upload(repo, "alice", "f", [chunk("r1")])
    began = repo.memo.generation
    answer = await repo.find_file("alice", "f")
    await upload(repo, "alice", "f", [chunk("r2")])
    # What a query that began before the write read may be old: not stored.
    repo.memo.put(("find_file", "alice", "f"), began, answer,
                  (("file", answer.file_id), ("path", "alice", "f")))
    assert (await repo.find_file("alice", "f")).current_version == 2


async def test_a_new_version_forgets_only_its_own_file(repo: MetadataRepository) -> None:
    repo.keep_read_answers()
    assert repo.memo is not None
    await upload(repo, "alice", "a", [chunk("a1")])
    await upload(repo, "alice", "b", [chunk("b1")])
    a = await repo.find_file("alice", "a")
    b = await repo.find_file("alice", "b")
    with pytest.raises(NotFound):
        await repo.find_file("alice", "new")
    await upload(repo, "alice", "a", [chunk("a2")])
    assert await repo.find_file("alice", "b") is b  # untouched: still in memory
    assert (await repo.find_file("alice", "a")).current_version == 2
    assert a.current_version == 1
    # "No such file" was remembered, and is forgotten when the file appears.
    with pytest.raises(NotFound):
        await repo.find_file("alice", "new")
    await upload(repo, "alice", "new", [chunk("n1")])
    assert (await repo.find_file("alice", "new")).current_version == 1


async def test_new_copies_of_a_shared_chunk_reach_every_file_that_uses_it(
    repo: MetadataRepository,
) -> None:
    repo.keep_read_answers()
    shared = chunk("shared", replicas=("w1",))
    await upload(repo, "alice", "first", [shared])
    first = await repo.find_file("alice", "first")
    assert (await repo.get_version(first.file_id)).chunks[0].replicas == ("w1",)
    # Another upload of the same bytes stored fresh copies (w1 was away).
    await upload(repo, "alice", "second", [chunk("shared", replicas=("w2", "w3"))])
    version = await repo.get_version(first.file_id)
    assert version.chunks[0].replicas == ("w1", "w2", "w3")


async def test_a_commit_leaves_exactly_what_the_database_would_answer(
    repo: MetadataRepository,
) -> None:
    repo.keep_read_answers()
    assert repo.memo is not None
    a, b = chunk("wt-a", replicas=("w1", "w2")), chunk("wt-b", size=50, replicas=("w3",))
    await upload(repo, "alice", "wt", [a, b])
    hits = repo.memo.hits
    record = await repo.find_file("alice", "wt")
    version = await repo.get_version(record.file_id, None, "alice")
    assert repo.memo.hits == hits + 2  # both written through by the commit
    repo.memo = None
    assert record == await repo.find_file("alice", "wt")
    assert version == await repo.get_version(record.file_id, None, "alice")


async def test_only_claims_and_touches_skip_waiting_for_the_disk(
    repo: MetadataRepository,
) -> None:
    from sqlalchemy import text

    if repo.engine.dialect.name == "postgresql":
        # Relaxed per transaction, with SET LOCAL: nothing leaks to the pool.
        async with repo._write(relaxed=True) as session:
            assert (await session.execute(text("SHOW synchronous_commit"))).scalar_one() == "off"
        async with repo._write() as session:
            assert (await session.execute(text("SHOW synchronous_commit"))).scalar_one() == "on"
        return

    async def synchronous(engine) -> int:  # type: ignore[no-untyped-def]
        async with engine.connect() as conn:
            return (await conn.execute(text("PRAGMA synchronous"))).scalar_one()

    assert await synchronous(repo.engine) == 2  # FULL: versions, deletes, intents
    assert repo._relaxed_engine is not None
    assert await synchronous(repo._relaxed_engine) == 1  # NORMAL: claims, touches
    # A version committed after its claims makes them durable with it (one WAL).
    await upload(repo, "alice", "durable", [chunk("relaxed-claim")])
    assert (await repo.find_file("alice", "durable")).current_version == 1


async def test_a_copy_added_or_removed_forgets_only_the_versions_using_its_chunk(
    repo: MetadataRepository,
) -> None:
    repo.keep_read_answers()
    assert repo.memo is not None
    await upload(repo, "alice", "x", [chunk("cx")])
    await upload(repo, "alice", "y", [chunk("cy")])
    x = await repo.find_file("alice", "x")
    y = await repo.find_file("alice", "y")
    y_version = await repo.get_version(y.file_id, None, "alice")
    await repo.add_replicas(chunk("cx").chunk_id, ["w2"])
    assert await repo.get_version(y.file_id, None, "alice") is y_version  # kept
    assert (await repo.get_version(x.file_id, None, "alice")).chunks[0].replicas == ("w1", "w2")
    await repo.remove_replica(chunk("cx").chunk_id, "w1")
    assert (await repo.get_version(x.file_id, None, "alice")).chunks[0].replicas == ("w2",)
    assert await repo.get_version(y.file_id, None, "alice") is y_version
