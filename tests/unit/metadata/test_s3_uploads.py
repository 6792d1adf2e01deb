"""S3 multipart uploads in the metadata store, on SQLite, PostgreSQL and DynamoDB: the
listing's prefix, markers and order; only open, unexpired uploads of the
owner are listed; a row goes with its session on abort and expiry."""

from __future__ import annotations

import asyncio
import time

from echofs.core.consistency import Mode
from echofs.core.upload_sessions import PartLayout
from echofs.metadata.repository import MetadataRepository
from echofs.metadata.s3_uploads import S3Upload
from echofs.metadata.upload_sessions import SessionCommit

from .conftest import ALL_BACKENDS

METADATA_BACKENDS = ALL_BACKENDS


async def _upload(repo: MetadataRepository, key: str, owner: str = "alice",
                  bucket: str = "bkt", lifetime: float = 3600.0) -> str:
    session = await repo.create_upload_session(
        owner=owner, path=f"{bucket}/{key}", layout=PartLayout(None, 1024), mode=Mode.STRONG,
        lifetime=lifetime, max_open=0)
    await repo.s3_uploads.add(S3Upload(session.session_id, bucket, key,
                                                 {"Content-Type": "text/plain"}, {"a": "b"}))
    return session.session_id


async def test_listing_pages_by_key_then_upload_id(repo) -> None:
    uploads = repo.s3_uploads
    made = sorted([("x/2", await _upload(repo, "x/2")), ("x/1", await _upload(repo, "x/1")),
                   ("x/1", await _upload(repo, "x/1")), ("y", await _upload(repo, "y"))])
    await _upload(repo, "x/1", owner="bob")  # someone else's: never listed
    await _upload(repo, "x/1", bucket="other")

    async def listed(prefix: str = "", key: str = "", upload_id: str = "",
                     limit: int = 100) -> list[tuple[str, str]]:
        return [(u.key, u.upload_id) for u in await uploads.open_uploads(
            "alice", "bkt", prefix, key, upload_id, limit)]

    assert await listed() == made
    assert await listed("x/") == made[:3]
    assert await listed(limit=2) == made[:2]
    assert await listed(key=made[0][0], upload_id=made[0][1]) == made[1:]
    assert await listed(key="x/1") == made[2:]  # a key marker alone skips the key
    found = await uploads.get(made[0][1])
    assert found is not None and found.headers == {"Content-Type": "text/plain"}
    assert found.user_meta == {"a": "b"} and found.initiated <= time.time()


async def test_aborted_and_expired_uploads_leave_nothing(repo) -> None:
    uploads = repo.s3_uploads
    aborted = await _upload(repo, "a")
    expiring = await _upload(repo, "e", lifetime=0.01)
    kept = await _upload(repo, "k")
    await repo.abort_upload_session(aborted)
    assert await uploads.get(aborted) is None
    await asyncio.sleep(0.05)  # past the expiring upload's lifetime
    assert [u.upload_id for u in await uploads.open_uploads("alice", "bkt", "", "", "", 10)] \
        == [kept]  # the expired one is not listed even before the expirer runs
    assert await repo.expire_upload_sessions(time.time() + 1) >= 1
    assert await uploads.get(expiring) is None
    assert await uploads.get(kept) is not None


async def test_markers_and_prefixes_meet_keys_that_prefix_each_other(repo) -> None:
    uploads = repo.s3_uploads
    made = sorted([(key, await _upload(repo, key)) for key in ("a", "a/b", "ab", "b", "0")])

    async def listed(prefix: str = "", key: str = "", upload_id: str = "") -> list[str]:
        return [u.key for u in await uploads.open_uploads(
            "alice", "bkt", prefix, key, upload_id, 100)]

    assert await listed() == ["0", "a", "a/b", "ab", "b"]
    assert await listed("a") == ["a", "a/b", "ab"]
    assert await listed("a", key="a") == ["a/b", "ab"]
    assert await listed("a", key="0") == ["a", "a/b", "ab"]  # the marker is before the prefix
    assert await listed("a", key="ab") == []
    assert await listed(key="a", upload_id=dict(made)["a"]) == ["a/b", "ab", "b"]
    assert await listed("c") == []


async def test_a_completed_upload_is_found_but_not_listed(repo) -> None:
    uploads = repo.s3_uploads
    done = await _upload(repo, "done")
    kept = await _upload(repo, "kept")
    _, version, made = await repo.complete_upload_session(
        done, SessionCommit("f" * 64, (), 0, 5))  # an empty object: no parts
    assert made and version.size == 0
    found = await uploads.get(done)
    assert found is not None and (found.bucket, found.key) == ("bkt", "done")
    assert [u.upload_id for u in await uploads.open_uploads("alice", "bkt", "", "", "", 10)] \
        == [kept]
