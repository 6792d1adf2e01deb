"""Upload sessions in the metadata store, on SQLite, PostgreSQL and DynamoDB: parts
replace each other, their chunks count as referenced, completion is one
version made once, quotas, abort and expiry."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import update

from echofs.core.consistency import Mode
from echofs.core.errors import Conflict, NotFound
from echofs.core.upload_sessions import PartLayout, SessionState
from echofs.metadata.dynamodb.base import SESSIONS
from echofs.metadata.dynamodb.connection import value
from echofs.metadata.dynamodb.upload_sessions import expiry_sort_key
from echofs.metadata.models import UploadSessionRow
from echofs.metadata.repository import MetadataRepository
from echofs.metadata.upload_sessions import (
    SessionCommit,
    SessionQuotaExceeded,
    StoredPart,
)

from .conftest import ALL_BACKENDS, chunk, future

METADATA_BACKENDS = ALL_BACKENDS


async def new_session(repo: MetadataRepository, owner: str = "alice", path: str = "f",
                      size: int = 200, part: int = 100, lifetime: float = 3600.0,
                      max_open: int = 0):  # type: ignore[no-untyped-def]
    return await repo.create_upload_session(owner=owner, path=path,
                                            layout=PartLayout(size, part), mode=Mode.STRONG,
                                            lifetime=lifetime, max_open=max_open)


def stored(part: int, name: str, size: int = 100) -> StoredPart:
    c = chunk(name, size)
    return StoredPart(part, size, f"{part:064x}", None, None, (c,), 1)


async def expire_now(repo, session_id: str) -> None:  # type: ignore[no-untyped-def]
    """The session's time runs out (as if UPLOAD_SESSION_TTL_SECONDS had
    passed): each engine's record of its expiry is moved back."""
    at = time.time() - 1
    if repo.engine is not None:
        async with repo.writing_unmemoized() as db:
            await db.execute(update(UploadSessionRow).where(
                UploadSessionRow.id == session_id).values(expires_at=at))
        return
    session = await repo.get_upload_session(session_id)
    for pk, sk, extra in ((f"S#{session_id}", "SESSION", ", g1sk = :gsk"),
                          (f"O#{session.owner}", session_id, "")):
        await repo.db.call(
            "update_item", TableName=repo.db.table(SESSIONS),
            Key={"pk": value(pk), "sk": value(sk)},
            UpdateExpression=f"SET expires_at = :at{extra}",
            ExpressionAttributeValues={":at": value(at), **(
                {":gsk": value(expiry_sort_key(at, session_id))} if extra else {})})


async def record(repo: MetadataRepository, session_id: str, part: StoredPart) -> None:
    await repo.claim_chunks(part.chunks)
    await repo.record_upload_part(session_id, part)


async def test_parts_are_held_replaced_and_protect_their_chunks(repo) -> None:
    session = await new_session(repo)
    assert session.total_parts == 2
    first = stored(0, "a")
    await record(repo, session.session_id, first)
    await record(repo, session.session_id, stored(1, "b"))
    replacement = stored(0, "a2")
    await record(repo, session.session_id, replacement)
    parts = await repo.upload_session_parts(session.session_id)
    assert [(p.part, p.blake3) for p in parts] == [(0, f"{0:064x}"), (1, f"{1:064x}")]
    manifest = await repo.upload_session_manifest(session.session_id, [0, 1])
    assert [c.chunk_id for c in manifest] == [chunk("a2").chunk_id, chunk("b").chunk_id]
    # Only the replaced part's chunk is garbage; the held parts' are referenced.
    assert await repo.claim_garbage(future()) == [first.chunks[0].chunk_id]


async def test_complete_makes_one_version_once(repo) -> None:
    session = await new_session(repo)
    for part in (stored(1, "b"), stored(0, "a")):
        await record(repo, session.session_id, part)
    commit = SessionCommit("f" * 64, ((0, f"{0:064x}"), (1, f"{1:064x}")), 200, 5)
    record_, version, made = await repo.complete_upload_session(session.session_id, commit)
    assert made and version.version == 1 and version.size == 200
    assert [c.chunk_id for c in version.chunks] == [chunk("a").chunk_id, chunk("b").chunk_id]
    assert [c.offset for c in version.chunks] == [0, 100]
    again = await repo.complete_upload_session(session.session_id, commit)
    assert (again[0].file_id, again[1].version, again[2]) == (record_.file_id, 1, False)
    assert (await repo.get_upload_session(session.session_id)).state == SessionState.COMPLETED
    # The version references the chunks now: still nothing to collect.
    assert await repo.claim_garbage(future()) == []
    with pytest.raises(Conflict):
        await repo.record_upload_part(session.session_id, stored(0, "late"))


async def test_complete_refuses_parts_that_changed(repo) -> None:
    session = await new_session(repo, size=100)
    await record(repo, session.session_id, stored(0, "a"))
    with pytest.raises(Conflict) as raised:
        await repo.complete_upload_session(session.session_id,
                                           SessionCommit("f" * 64, ((0, "e" * 64),), 100, 5))
    assert raised.value.code == "parts_changed"


async def test_open_sessions_per_owner_are_limited(repo) -> None:
    for _ in range(2):
        await new_session(repo, max_open=2)
    with pytest.raises(SessionQuotaExceeded):
        await new_session(repo, max_open=2)
    await new_session(repo, owner="bob", max_open=2)
    assert len(await repo.list_upload_sessions("alice")) == 2


async def test_abort_and_expiry_drop_sessions_and_free_their_chunks(repo) -> None:
    aborted = await new_session(repo, size=100)
    await record(repo, aborted.session_id, stored(0, "x"))
    expiring = await new_session(repo, size=100)
    await record(repo, expiring.session_id, stored(0, "y"))
    kept = await new_session(repo, size=100)
    await record(repo, kept.session_id, stored(0, "z"))
    await repo.abort_upload_session(aborted.session_id)
    with pytest.raises(NotFound):
        await repo.get_upload_session(aborted.session_id)
    await expire_now(repo, expiring.session_id)
    with pytest.raises(NotFound):  # expired: no more parts
        await repo.record_upload_part(expiring.session_id, stored(0, "y"))
    assert await repo.expire_upload_sessions(time.time()) == 1
    assert sorted(await repo.claim_garbage(future())) == sorted(
        [chunk("x").chunk_id, chunk("y").chunk_id])
    assert (await repo.get_upload_session(kept.session_id)).state == SessionState.OPEN


async def test_a_part_whose_chunk_was_collected_is_refused(repo) -> None:
    session = await new_session(repo, size=100)
    part = stored(0, "gone")
    await repo.claim_chunks(part.chunks)
    assert await repo.claim_garbage(future()) == [part.chunks[0].chunk_id]
    with pytest.raises(Conflict) as raised:
        await repo.record_upload_part(session.session_id, part)
    assert raised.value.code == "chunk_collected"


async def test_a_free_layout_is_made_of_the_parts_complete_names(repo) -> None:
    session = await repo.create_upload_session(
        owner="alice", path="s3-like", layout=PartLayout(None, 1000), mode=Mode.STRONG,
        lifetime=3600.0, max_open=0)
    assert session.total_parts is None and not session.layout.fixed
    for part in (stored(7, "p7", 30), stored(2, "p2", 50), stored(4, "p4", 10)):
        await record(repo, session.session_id, part)
    commit = SessionCommit("f" * 64, ((2, f"{2:064x}"), (7, f"{7:064x}")), 80, 5)
    _, version, made = await repo.complete_upload_session(session.session_id, commit)
    assert made and version.size == 80
    assert [(c.chunk_id, c.offset) for c in version.chunks] == [
        (chunk("p2", 50).chunk_id, 0), (chunk("p7", 30).chunk_id, 50)]
    # The part left out is dropped with the session's parts: its chunk is garbage.
    assert await repo.claim_garbage(future()) == [chunk("p4", 10).chunk_id]


async def test_a_complete_keeping_no_version_changes_nothing(repo) -> None:
    session = await new_session(repo, size=100)
    await record(repo, session.session_id, stored(0, "a"))
    with pytest.raises(ValueError):
        await repo.complete_upload_session(
            session.session_id, SessionCommit("f" * 64, ((0, f"{0:064x}"),), 100, 0))
    assert (await repo.get_upload_session(session.session_id)).state == SessionState.OPEN
    assert len(await repo.upload_session_parts(session.session_id)) == 1
    with pytest.raises(NotFound):
        await repo.find_file("alice", "f")
