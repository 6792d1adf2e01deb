"""Upload sessions on DynamoDB, where every rule is a conditional write:
two masters admitting the last free places, two masters sending one part,
parts too large for one item, and completions retried from two masters
(against moto in server mode)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from echofs.core.consistency import Mode
from echofs.core.errors import Conflict, NotFound
from echofs.core.manifest import NewChunk
from echofs.core.upload_sessions import PartLayout
from echofs.metadata.dynamodb import upload_sessions
from echofs.metadata.dynamodb.base import CHUNKS, GC, LIVE, SESSIONS, chunk_key, gc_sort_key
from echofs.metadata.dynamodb.repository import DynamoMetadataRepository
from echofs.metadata.upload_sessions import SessionCommit, SessionQuotaExceeded, StoredPart

from ..conftest import cid, future


async def put_chunks(repo: DynamoMetadataRepository, chunk_ids: list[str]) -> None:
    """Chunk items as a claim leaves them: live, unreferenced, just touched."""
    now = time.time()
    items: list[dict[str, Any]] = []
    for chunk_id in dict.fromkeys(chunk_ids):
        pk, sk = chunk_key(chunk_id)
        items.append({"pk": pk, "sk": sk, "chunk_id": chunk_id, "raw_size": 10,
                      "stored_size": 10, "compressed": False, "state": LIVE,
                      "touched_at": now, "created_at": now, "refs": 0, "replicas": {},
                      "g1pk": GC, "g1sk": gc_sort_key(now, chunk_id)})
    await repo.db.write_many(CHUNKS, puts=items)


async def refs(repo: DynamoMetadataRepository, chunk_ids: list[str]) -> list[int]:
    found = await repo.db.get_many(CHUNKS, [chunk_key(c) for c in chunk_ids])
    return [int(found[chunk_key(c)]["refs"]) for c in chunk_ids]


def part(number: int, names: list[str]) -> StoredPart:
    chunks = tuple(NewChunk(cid(n), 10, 10, False, ("w1",)) for n in names)
    return StoredPart(number, 10 * len(chunks), f"{number:064x}", None, None, chunks, 1)


async def new_session(repo: DynamoMetadataRepository, max_open: int = 0):  # type: ignore[no-untyped-def]
    return await repo.create_upload_session(owner="alice", path="f",
                                            layout=PartLayout(None, 1 << 30), mode=Mode.STRONG,
                                            lifetime=3600.0, max_open=max_open)


async def test_two_masters_admit_no_more_sessions_than_the_quota(
        two_masters: tuple[DynamoMetadataRepository, ...]) -> None:
    one, two = two_masters
    results = await asyncio.gather(*[new_session(one if n % 2 else two, max_open=3)
                                     for n in range(10)], return_exceptions=True)
    admitted = [r for r in results if not isinstance(r, BaseException)]
    assert len(admitted) == 3, results
    assert all(isinstance(r, SessionQuotaExceeded) for r in results if r not in admitted)
    assert len(await one.list_upload_sessions("alice")) == 3
    assert len(await two.list_upload_sessions(None)) == 3
    await one.abort_upload_session(admitted[0].session_id)
    await new_session(two, max_open=3)  # a place freed is a place again


async def test_a_part_of_many_chunks_is_paged_and_its_replacement_frees_them(
        two_masters: tuple[DynamoMetadataRepository, ...],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # Pages of 4 past 10 chunks: the paths of a part of thousands, quickly.
    monkeypatch.setattr(upload_sessions, "INLINE_CHUNKS", 10)
    monkeypatch.setattr(upload_sessions, "PAGE_CHUNKS", 4)
    repo, _ = two_masters
    names = [f"big-{n}" for n in range(25)]
    ids = [cid(n) for n in names]
    await put_chunks(repo, [*ids, cid("small")])
    session = await new_session(repo)
    await repo.record_upload_part(session.session_id, part(3, names))
    [held] = await repo.upload_session_parts(session.session_id)
    assert (held.part, held.chunk_count, held.size) == (3, 25, 250)
    manifest = await repo.upload_session_manifest(session.session_id, [3])
    assert [c.chunk_id for c in manifest] == ids
    assert all(c.replicas == ("w1",) for c in manifest)
    assert await refs(repo, ids[:3]) == [1, 1, 1]
    await repo.record_upload_part(session.session_id, part(3, ["small"]))
    assert [c.chunk_id for c in await repo.upload_session_manifest(
        session.session_id, [3])] == [cid("small")]
    assert set(await refs(repo, ids)) == {0}
    # Only the part's item and the new write remain: the old pages are gone.
    left = [item async for item in repo.db.query(
        SESSIONS, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"S#{session.session_id}"}})]
    assert sorted(item["sk"] for item in left) == ["P#00003", "SESSION"]
    assert sorted(await repo.claim_garbage(future(), limit=100)) == sorted(ids)


async def test_one_part_sent_by_two_masters_at_once_keeps_one_and_frees_the_rest(
        two_masters: tuple[DynamoMetadataRepository, ...]) -> None:
    one, two = two_masters
    session = await new_session(one)
    writes = [part(0, [f"try-{n}-{k}" for k in range(3)]) for n in range(6)]
    await put_chunks(one, [c.chunk_id for w in writes for c in w.chunks])
    await asyncio.gather(*[(one if n % 2 else two).record_upload_part(session.session_id, w)
                           for n, w in enumerate(writes)])
    [held] = await two.upload_session_parts(session.session_id)
    [kept] = [w for w in writes if [c.chunk_id for c in w.chunks] == [
        c.chunk_id for c in await one.upload_session_manifest(session.session_id, [0])]]
    for w in writes:
        assert await refs(one, [c.chunk_id for c in w.chunks]) == (
            [1, 1, 1] if w is kept else [0, 0, 0])
    assert held.chunk_count == 3


async def test_a_completion_sent_to_two_masters_at_once_makes_one_version(
        two_masters: tuple[DynamoMetadataRepository, ...]) -> None:
    one, two = two_masters
    session = await new_session(one)
    parts = [part(0, ["c0", "c1"]), part(1, ["c2"])]
    ids = [c.chunk_id for p in parts for c in p.chunks]
    await put_chunks(one, ids)
    for p in parts:
        await one.record_upload_part(session.session_id, p)
    commit = SessionCommit("f" * 64, tuple((p.part, p.blake3) for p in parts), 30, 5)
    results = await asyncio.gather(*[(one if n % 2 else two).complete_upload_session(
        session.session_id, commit) for n in range(6)])
    assert sum(made for _, _, made in results) == 1
    assert {(r.file_id, v.version) for r, v, _ in results} == {(results[0][0].file_id, 1)}
    assert [v.version for v in await one.list_versions(results[0][0].file_id)] == [1]
    # The version holds the chunks now, the parts nothing: one reference each.
    assert await refs(one, ids) == [1, 1, 1]
    assert await one.upload_session_parts(session.session_id) == []
    assert await two.list_upload_sessions("alice") == []


async def test_a_part_racing_an_abort_is_refused_and_gives_its_references_back(
        two_masters: tuple[DynamoMetadataRepository, ...],
        monkeypatch: pytest.MonkeyPatch) -> None:
    one, two = two_masters
    session = await new_session(one)
    sent = part(0, ["racer-0", "racer-1"])
    ids = [c.chunk_id for c in sent.chunks]
    await put_chunks(one, ids)
    record_copies = one.record_copies

    async def aborted_meanwhile(pairs: Any, now: float) -> None:
        # Between the part's references and its put, another master aborts.
        await two.abort_upload_session(session.session_id)
        await record_copies(pairs, now)

    monkeypatch.setattr(one, "record_copies", aborted_meanwhile)
    with pytest.raises(NotFound):
        await one.record_upload_part(session.session_id, sent)
    assert await refs(one, ids) == [0, 0]
    left = [item async for item in one.db.query(
        SESSIONS, KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": f"S#{session.session_id}"}})]
    assert left == []
    assert sorted(await one.claim_garbage(future())) == sorted(ids)


async def test_a_part_sent_again_while_completing_is_the_one_committed(
        two_masters: tuple[DynamoMetadataRepository, ...],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """As on SQL, where the part waits for the completion's lock: the
    version is made of the parts as they are when it is published."""
    one, two = two_masters
    session = await new_session(one)
    first, again = part(0, ["old-0", "old-1"]), part(0, ["new-0"])
    old_ids, new_ids = [c.chunk_id for c in first.chunks], [c.chunk_id for c in again.chunks]
    await put_chunks(one, old_ids + new_ids)
    await one.record_upload_part(session.session_id, first)
    take_refs = one._take_refs
    sent = []

    async def sent_meanwhile(requests: Any, now: float) -> Any:
        if not sent:  # between reading the parts and publishing: once
            sent.append(await two.record_upload_part(session.session_id, again))
        return await take_refs(requests, now)

    monkeypatch.setattr(one, "_take_refs", sent_meanwhile)
    commit = SessionCommit("f" * 64, ((0, first.blake3),), 20, 5)
    with pytest.raises(Conflict) as refused:  # the part's size changed under the commit
        await one.complete_upload_session(session.session_id, commit)
    assert refused.value.code == "parts_changed"
    assert await refs(one, old_ids + new_ids) == [0, 0, 1]
    _, version, made = await one.complete_upload_session(
        session.session_id, SessionCommit("f" * 64, ((0, again.blake3),), 10, 5))
    assert made and [c.chunk_id for c in version.chunks] == new_ids
    assert await refs(one, old_ids + new_ids) == [0, 0, 1]


async def test_two_droppers_of_one_sessions_parts_give_back_once(
        two_masters: tuple[DynamoMetadataRepository, ...]) -> None:
    """The expirer and a completion's clean-up may drop one session's parts
    at once: a chunk another session's part also holds keeps that reference."""
    one, two = two_masters
    shared = part(0, ["shared"])
    await put_chunks(one, [cid("shared")])
    dropped, holder = await new_session(one), await new_session(one)
    for session in (dropped, holder):
        await one.record_upload_part(session.session_id, shared)
    assert await refs(one, [cid("shared")]) == [2]
    now = time.time()
    await asyncio.gather(one._drop_parts(dropped.session_id, now),
                         two._drop_parts(dropped.session_id, now))
    assert await refs(one, [cid("shared")]) == [1]
    assert await one.claim_garbage(future()) == []
