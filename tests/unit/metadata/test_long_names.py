"""Names at the limits (1024 characters, 2048 bytes), S3 keys of 1024 bytes
and long owners, on every engine: DynamoDB cannot hold them whole in a sort
key (1024 bytes), so its keys cut them with a digest; finding, listing by
prefix, paginating and deleting must not notice.

The one difference allowed: names sharing their first 880 bytes may list in
either order among themselves (DynamoDB orders them by digest)."""

from __future__ import annotations

import pytest

from echofs.core.consistency import Mode
from echofs.core.errors import NotFound
from echofs.core.names import MAX_NAME_BYTES, MAX_NAME_CHARS, normalize_name
from echofs.core.upload_sessions import PartLayout
from echofs.metadata.repository import MetadataRepository
from echofs.metadata.s3_uploads import S3Upload

from .conftest import ALL_BACKENDS, chunk, upload

METADATA_BACKENDS = ALL_BACKENDS


def limit_name(last: str = "é", at: int | None = None, swap: str = "ñ") -> str:
    """A valid name of exactly 1024 characters and 2048 bytes: segments of
    2-byte characters with one 3-byte character each to pay for its slash.
    ``last`` is its final character (2 bytes); ``at``: the index of an ``é``
    replaced by ``swap`` (2 bytes too)."""
    unit = "é" * 126 + "中" + "/"  # 128 characters, 256 bytes
    name = unit * 7 + "é" * 63 + "中" + "/" + "é" * 62 + last
    if at is not None:
        assert name[at] == "é"
        name = name[:at] + swap + name[at + 1:]
    assert len(name) == MAX_NAME_CHARS and len(name.encode()) == MAX_NAME_BYTES
    assert normalize_name(name) == name
    return name


def cut(text: str, size: int) -> str:
    return text.encode()[:size].decode(errors="ignore")


# A and B share their first 2046 bytes (B > A); C differs at byte 600 (C > both).
A = limit_name()
B = limit_name(last="ñ")
C = limit_name(at=300)
SHORT = ["doc.txt", "zzz.txt"]  # ASCII: before every name starting with "é"


def in_order(paths: list[str]) -> bool:
    """``paths`` in name order, A and B allowed either way round (the sort
    is stable: they stay as given)."""
    return sorted(paths, key=lambda p: A if p == B else p) == paths


async def test_names_at_the_limits_commit_find_list_and_delete(
        repo: MetadataRepository) -> None:
    names = [*SHORT, A, B, C]
    made = {name: (await upload(repo, "alice", name, [chunk(name)]))[0] for name in names}
    again, version = await upload(repo, "alice", A, [chunk("A2")])
    assert (again.file_id, version.version) == (made[A].file_id, 2)

    for name in names:
        found = await repo.find_file("alice", name)
        assert (found.path, found.file_id) == (name, made[name].file_id)
    with pytest.raises(NotFound):  # same first 2046 bytes as A and B: another name
        await repo.find_file("alice", A[:-1] + "ü")
    with pytest.raises(NotFound):
        await repo.find_file("bob", A)

    async def listed(prefix: str = "", owner: str | None = "alice") -> list[str]:
        return [r.path for r in await repo.list_files(owner=owner, prefix=prefix)]

    everything = await listed()
    assert sorted(everything) == sorted(names) and in_order(everything)
    assert everything[:2] == SHORT and everything[-1] == C
    assert sorted(await listed("é" * 5)) == [A, B, C]
    shared = cut(A, 1000)  # longer than a DynamoDB key holds: its cut and a filter
    assert sorted(await listed(shared)) == [A, B]
    assert await listed(A) == [A]
    assert await listed(B) == [B]
    assert await listed(C) == [C]
    assert await listed(cut(C, 1500)) == [C]
    assert await listed(A[:-1] + "ü") == []
    assert sorted(await listed(shared, owner=None)) == [A, B]

    # One at a time, resuming after the last seen: every name once, in order.
    for owner in ("alice", None):
        paged: list[str] = []
        after: tuple[str, str] | None = None
        while page := await repo.list_files(owner=owner, after=after, limit=1):
            paged.append(page[0].path)
            after = (page[0].path, page[0].owner)
        assert paged == everything
        paged, after = [], None
        while page := await repo.list_files(owner=owner, prefix=shared, after=after,
                                            limit=1):
            paged.append(page[0].path)
            after = (page[0].path, page[0].owner)
        assert sorted(paged) == [A, B]

    assert await repo.delete_file(made[A].file_id) == 2
    with pytest.raises(NotFound):
        await repo.find_file("alice", A)
    assert (await repo.find_file("alice", B)).file_id == made[B].file_id
    assert await listed(shared) == [B]
    for name in (B, C, *SHORT):
        assert await repo.delete_file(made[name].file_id) == 1
    assert await listed() == []


async def test_a_long_owner_and_a_long_name_list_among_everyone(
        repo: MetadataRepository) -> None:
    owner = "o" * 200 + "ü" * 55  # open mode's user_id: 255 printable characters
    mine, _ = await upload(repo, owner, A, [chunk("mine")])
    theirs, _ = await upload(repo, "alice", A, [chunk("theirs")])
    short, _ = await upload(repo, owner, "doc.txt", [chunk("short")])
    assert (await repo.find_file(owner, A)).file_id == mine.file_id
    listed = [(r.path, r.owner) for r in await repo.list_files(owner=None)]
    assert listed == [("doc.txt", owner), (A, "alice"), (A, owner)]
    paged: list[tuple[str, str]] = []
    after: tuple[str, str] | None = None
    while page := await repo.list_files(owner=None, after=after, limit=1):
        paged.append((page[0].path, page[0].owner))
        after = paged[-1]
    assert paged == listed
    assert [r.file_id for r in await repo.list_files(owner=owner)] == [
        short.file_id, mine.file_id]
    assert theirs.file_id != mine.file_id


async def test_a_bucket_of_long_keys_is_not_empty(repo: MetadataRepository) -> None:
    await repo.buckets.create("bkt", "alice")
    key = "k" * 1020  # with its bucket's name: the longest name in characters
    record, _ = await upload(repo, "alice", f"bkt/{key}", [chunk("object")])
    assert not await repo.buckets.delete("bkt", "alice")
    await repo.delete_file(record.file_id)
    assert await repo.buckets.delete("bkt", "alice")


async def test_s3_uploads_of_long_keys_list_by_key(repo: MetadataRepository) -> None:
    """Keys of 1024 bytes: two share their first 1020 bytes, a third differs early."""
    keys = ["k" * 1023 + "a", "k" * 1023 + "b", "k" * 100 + "l" * 924, "short"]

    async def start(key: str) -> str:
        # The session's name is the key's (packed, when that is too long):
        # only the key matters here.
        session = await repo.create_upload_session(
            owner="alice", path=f"bkt/upload-{len(ids)}", layout=PartLayout(None, 1024),
            mode=Mode.STRONG, lifetime=3600.0, max_open=0)
        await repo.s3_uploads.add(S3Upload(session.session_id, "bkt", key, {}, {}))
        return session.session_id

    ids: dict[str, str] = {}
    for key in keys:
        ids[key] = await start(key)

    async def listed(prefix: str = "", key: str = "", upload_id: str = "",
                     limit: int = 100) -> list[str]:
        return [u.key for u in await repo.s3_uploads.open_uploads(
            "alice", "bkt", prefix, key, upload_id, limit)]

    everything = await listed()
    assert sorted(everything) == sorted(keys)
    assert everything[-2:] == [keys[2], "short"]  # "l" > "k"; "s" > "l"
    assert sorted(await listed("k" * 1000)) == keys[:2]
    assert await listed(keys[1]) == [keys[1]]
    assert await listed("k" * 1023 + "c") == []
    paged: list[str] = []
    marker, marker_id = "", ""
    while found := await repo.s3_uploads.open_uploads("alice", "bkt", "", marker,
                                                      marker_id, 1):
        paged.append(found[0].key)
        marker, marker_id = found[0].key, found[0].upload_id
    assert paged == everything
    assert await listed(key=everything[0]) == everything[1:]  # a key marker alone
    await repo.abort_upload_session(ids[keys[0]])
    assert sorted(await listed("k" * 1000)) == [keys[1]]
