"""Files and versions as readers see them: find, get, list, delete, totals."""

from __future__ import annotations

import pytest

from echofs.core.errors import NotFound
from echofs.metadata.repository import MetadataRepository, StoreTotals

from .conftest import ALL_BACKENDS, chunk, cid, upload

METADATA_BACKENDS = ALL_BACKENDS

# -- find and get -------------------------------------------------------------

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


# -- delete_file --------------------------------------------------------------

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


# -- list_files ---------------------------------------------------------------

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


# -- totals -------------------------------------------------------------------

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
