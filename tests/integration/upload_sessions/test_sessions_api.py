"""Upload sessions over HTTP against an embedded node: parts in any order and
at once, retries, digests, completion that references the parts' chunks,
abort, expiry with collection, quotas and ownership."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random

import aiohttp
import blake3
import pytest

from echofs.core.errors import BadRequest, Conflict, PayloadTooLarge
from echofs.master.upload_sessions import PartDigests
from echofs.metadata import database
from echofs.testing.http import error_of
from echofs.testing.node import running_node, stored_chunks

KIB = 1024
PART = 256 * KIB
SECRET = "s" * 40


@pytest.fixture(params=["sqlite", "postgres"])
async def node(request, tmp_path):
    """The same node on the embedded SQLite store and on PostgreSQL."""
    extra = {}
    if request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
        await asyncio.to_thread(database.upgrade, url)
        extra["database_url"] = url
    async with running_node(tmp_path / "d", chunk_size=64 * KIB, gc_grace=0.5,
                            gc_pressure_grace=0.5, upload_sessions_per_user=3,
                            upload_part_size=PART, max_upload_part_size=1024 * KIB,
                            **extra) as n:
        yield n


@pytest.fixture
async def http(node):
    async with aiohttp.ClientSession(base_url=node.url) as session:
        yield session


async def init(http, path: str, size: int, part_size: int = PART, **extra) -> dict:
    async with http.post("/api/v1/files/upload/init",
                         json={"file_name": path, "file_size": size, "chunk_size": part_size,
                               **extra}) as resp:
        body = await resp.json()
        assert resp.status == 201, body
        return body


async def put_part(http, session_id: str, n: int, data: bytes, *, digest: str | None = None,
                   header: str = "X-EchoFS-BLAKE3") -> aiohttp.ClientResponse:
    digest = digest or blake3.blake3(data).hexdigest()
    async with http.put(f"/api/v1/files/upload/{session_id}/parts/{n}", data=data,
                        headers={header: digest}) as resp:
        await resp.read()
        return resp


def parts_of(data: bytes, part_size: int = PART) -> list[bytes]:
    return [data[i:i + part_size] for i in range(0, len(data), part_size)] or [b""]


async def test_parts_in_any_order_and_at_once_make_one_version(node, http):
    data = os.urandom(5 * PART + 1234)
    session = await init(http, "big/file.bin", len(data))
    assert session["total_chunks"] == 6 and session["chunk_size"] == PART
    assert session["chunks"][5] == {"index": 5, "offset": 5 * PART, "size": 1234}
    assert session["data"]["session_id"] == session["session_id"]
    sid = session["session_id"]
    order = list(enumerate(parts_of(data)))
    random.shuffle(order)
    # Concurrent: every part at once.
    answers = await asyncio.gather(*(put_part(http, sid, n, p) for n, p in order))
    assert [r.status for r in answers] == [200] * 6
    async with http.get(f"/api/v1/files/upload/{sid}") as resp:
        status = await resp.json()
    assert status["received"] == list(range(6)) and status["missing"] == []
    assert status["bytes_received"] == len(data)
    # Nothing visible before complete.
    async with http.get("/api/v1/files/content/big/file.bin") as resp:
        assert resp.status == 404
    repo = node.master.repo
    chunks_before = (await repo.totals()).chunks
    async with http.post(f"/api/v1/files/upload/{sid}/complete",
                         json={"blake3": blake3.blake3(data).hexdigest()}) as resp:
        done = await resp.json()
        assert resp.status == 201, done
    assert done["blake3"] == blake3.blake3(data).hexdigest() and done["size"] == len(data)
    # Referenced, not copied: no chunk was added by completing.
    assert (await repo.totals()).chunks == chunks_before
    async with http.get("/api/v1/files/content/big/file.bin") as resp:
        assert resp.status == 200 and await resp.read() == data
        assert resp.headers["ETag"] == f'"{blake3.blake3(data).hexdigest()}"'


async def test_retries_are_idempotent(node, http):
    data = os.urandom(2 * PART)
    sid = (await init(http, "retry.bin", len(data)))["session_id"]
    first, second = parts_of(data)
    for _ in range(3):
        assert (await put_part(http, sid, 0, first)).status == 200
    assert (await put_part(http, sid, 1, second)).status == 200
    async with http.get(f"/api/v1/files/upload/{sid}") as resp:
        status = await resp.json()
    assert status["received"] == [0, 1]
    async with http.post(f"/api/v1/files/upload/{sid}/complete") as resp:
        done = await resp.json()
        assert resp.status == 201
    # A retried complete answers the same version, and makes no other.
    async with http.post(f"/api/v1/files/upload/{sid}/complete") as resp:
        again = await resp.json()
        assert resp.status == 200
    assert (again["file_id"], again["version"]) == (done["file_id"], done["version"]) == (
        done["file_id"], 1)
    async with http.get(f"/api/v1/files/{done['file_id']}/versions") as resp:
        assert len((await resp.json())["versions"]) == 1
    # A part after completion is refused.
    resp = await put_part(http, sid, 0, first)
    assert resp.status == 409


async def test_a_part_with_a_wrong_digest_is_refused(node, http):
    data = os.urandom(PART)
    sid = (await init(http, "bad.bin", len(data), part_size=PART))["session_id"]
    wrong = blake3.blake3(b"something else").hexdigest()
    async with http.put(f"/api/v1/files/upload/{sid}/parts/0", data=data,
                        headers={"X-EchoFS-BLAKE3": wrong}) as resp:
        assert resp.status == 400
        assert (await error_of(resp))["code"] == "digest_mismatch"
    async with http.put(f"/api/v1/files/upload/{sid}/parts/0", data=data,
                        headers={"X-EchoFS-SHA256": hashlib.sha256(b"x").hexdigest()}) as resp:
        assert resp.status == 400
        assert (await error_of(resp))["code"] == "digest_mismatch"
    async with http.get(f"/api/v1/files/upload/{sid}") as resp:
        assert (await resp.json())["received"] == []
    async with http.get("/metrics") as resp:
        assert 'echofs_upload_session_events_total{event="part_refused"}' in await resp.text()
    # The right SHA-256 is accepted.
    resp = await put_part(http, sid, 0, data, digest=hashlib.sha256(data).hexdigest(),
                          header="X-EchoFS-SHA256")
    assert resp.status == 200
    async with http.post(f"/api/v1/files/upload/{sid}/complete",
                         json={"blake3": wrong}) as resp:
        assert resp.status == 400
        assert (await error_of(resp))["code"] == "digest_mismatch"


async def test_bad_requests_get_clear_4xx(node, http):
    sid = (await init(http, "x.bin", 3 * PART))["session_id"]
    cases = [
        (http.put(f"/api/v1/files/upload/{sid}/parts/3", data=b"x"), 400, "invalid_part"),
        (http.put(f"/api/v1/files/upload/{sid}/parts/0", data=b"short"), 400,
         "part_size_mismatch"),
        (http.put(f"/api/v1/files/upload/{sid}/parts/0", data=b"x",
                  headers={"X-EchoFS-BLAKE3": "nothex"}), 400, "invalid_digest"),
        (http.post(f"/api/v1/files/upload/{sid}/complete"), 409, "parts_missing"),
        (http.get(f"/api/v1/files/upload/{'0' * 32}"), 404, "session_not_found"),
        (http.post("/api/v1/files/upload/init", json={"file_name": "a"}), 400, "missing_size"),
        (http.post("/api/v1/files/upload/init", json={"file_size": 1}), 400, "missing_name"),
        (http.post("/api/v1/files/upload/init", json={"file_name": "a", "file_size": -1}),
         400, "invalid_size"),
        (http.post("/api/v1/files/upload/init",
                   json={"file_name": "a", "file_size": 10, "chunk_size": 2048 * KIB}),
         413, "part_too_large"),
        (http.post("/api/v1/files/upload/init",
                   json={"file_name": "a", "file_size": 10**6, "chunk_size": 1}),
         400, "too_many_parts"),
        (http.post("/api/v1/files/upload/init", data=b"{"), 400, "invalid_json"),
    ]
    for request, status, code in cases:
        async with request as resp:
            assert resp.status == status, await resp.text()
            assert (await error_of(resp))["code"] == code


async def test_open_sessions_per_user_are_limited(node, http):
    sessions = [await init(http, f"q{i}", 10) for i in range(3)]
    async with http.post("/api/v1/files/upload/init",
                         json={"file_name": "q3", "file_size": 10}) as resp:
        assert resp.status == 429
        assert (await error_of(resp))["code"] == "too_many_sessions"
    # Another owner (open mode's user_id) has room of its own.
    await init(http, "q0", 10, user_id="someone-else")
    # Aborting one frees a place.
    async with http.delete(f"/api/v1/files/upload/{sessions[0]['session_id']}") as resp:
        assert resp.status == 200
    await init(http, "q4", 10)
    async with http.get("/api/v1/files/upload/sessions") as resp:
        assert (await resp.json())["count"] == 4


async def test_abort_and_expiry_leave_the_chunks_to_the_collector(node, http):
    master = node.master
    kept = os.urandom(PART)
    dropped = os.urandom(PART)
    expiring = os.urandom(PART)
    open_sid = (await init(http, "open.bin", PART))["session_id"]
    abort_sid = (await init(http, "abort.bin", PART))["session_id"]
    assert (await put_part(http, open_sid, 0, kept)).status == 200
    assert (await put_part(http, abort_sid, 0, dropped)).status == 200
    expire_sid = (await init(http, "expire.bin", PART))["session_id"]
    assert (await put_part(http, expire_sid, 0, expiring)).status == 200

    def ids(data: bytes) -> set[str]:
        return {blake3.blake3(data[i:i + 64 * KIB]).hexdigest()
                for i in range(0, len(data), 64 * KIB)}

    assert ids(kept) | ids(dropped) | ids(expiring) <= set(stored_chunks(node))
    async with http.delete(f"/api/v1/files/upload/{abort_sid}") as resp:
        assert resp.status == 200
    async with http.get(f"/api/v1/files/upload/{abort_sid}") as resp:
        assert resp.status == 404
    # The expiring session's clock runs out (as if 24 hours had passed).
    async with master.repo.writing_unmemoized() as session:
        from sqlalchemy import update

        from echofs.metadata.models import UploadSessionRow
        await session.execute(update(UploadSessionRow).where(
            UploadSessionRow.id == expire_sid).values(expires_at=0.0))
    async with http.get(f"/api/v1/files/upload/{expire_sid}") as resp:
        assert resp.status == 404
        assert (await error_of(resp))["code"] == "session_expired"
    assert await master.session_expirer.run_once() == 1
    await asyncio.sleep(0.6)  # the collector's grace period
    await master.collector.run_once(grace=0.5)
    on_disk = set(stored_chunks(node))
    assert not (ids(dropped) | ids(expiring)) & on_disk
    # The open session's part is referenced: never collected, even past grace.
    assert ids(kept) <= on_disk
    assert (await put_part(http, open_sid, 0, kept)).status == 200
    async with http.post(f"/api/v1/files/upload/{open_sid}/complete") as resp:
        assert resp.status == 201
    async with http.get("/api/v1/files/content/open.bin") as resp:
        assert await resp.read() == kept


async def test_empty_file(node, http):
    sid = (await init(http, "empty", 0))["session_id"]
    assert (await put_part(http, sid, 0, b"")).status == 200
    async with http.post(f"/api/v1/files/upload/{sid}/complete") as resp:
        assert resp.status == 201
    async with http.get("/api/v1/files/content/empty") as resp:
        assert resp.status == 200 and await resp.read() == b""


async def test_a_session_belongs_to_its_user(tmp_path):
    async with running_node(tmp_path / "d", jwt_secret=SECRET) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        tokens = []
        for name in ("alice", "bob"):
            async with http.post("/api/v1/auth/register",
                                 json={"username": name, "password": "correct horse"}) as r:
                tokens.append({"Authorization": f"Bearer {(await r.json())['token']}"})
        alice, bob = tokens
        async with http.post("/api/v1/files/upload/init", headers=alice,
                             json={"file_name": "mine", "file_size": 3}) as resp:
            sid = (await resp.json())["session_id"]
        async with http.post("/api/v1/files/upload/init",
                             json={"file_name": "x", "file_size": 3}) as resp:
            assert resp.status == 401
        for method, url in (("GET", f"/api/v1/files/upload/{sid}"),
                            ("PUT", f"/api/v1/files/upload/{sid}/parts/0"),
                            ("POST", f"/api/v1/files/upload/{sid}/complete"),
                            ("DELETE", f"/api/v1/files/upload/{sid}")):
            async with http.request(method, url, headers=bob, data=b"abc") as resp:
                assert resp.status == 404, (method, url)
        async with http.put(f"/api/v1/files/upload/{sid}/parts/0", headers=alice,
                            data=b"abc") as resp:
            assert resp.status == 200
        async with http.post(f"/api/v1/files/upload/{sid}/complete", headers=alice) as resp:
            assert resp.status == 201
            assert (await resp.json())["owner"] != "local"


async def test_a_free_layout_session_for_s3_style_uploads(node, http):
    """The service as S3 multipart will use it: no size announced, parts of
    any size up to the limit, MD5s kept, the file made of the parts named."""
    service = node.master.upload_sessions

    async def body(data: bytes):  # type: ignore[no-untyped-def]
        yield data

    session = await service.create("local", "multi/obj", None, None, None)
    assert session.total_parts is None and session.layout.part_size == 1024 * KIB
    pieces = {1: os.urandom(300 * KIB), 2: os.urandom(5), 3: os.urandom(700 * KIB)}
    for n, data in pieces.items():
        held = await service.put_part(session.session_id, None, n, body(data), PartDigests(),
                                      keep_md5=True)
        assert held.md5 == hashlib.md5(data).hexdigest()
    with pytest.raises(PayloadTooLarge):
        await service.put_part(session.session_id, None, 4, body(os.urandom(1025 * KIB)),
                               PartDigests())
    with pytest.raises(BadRequest):
        await service.complete(session.session_id, None, parts=[3, 1])
    with pytest.raises(Conflict):
        await service.complete(session.session_id, None, parts=[1, 5])
    # The parts as a caller checked them: one sent again since is refused.
    first = (await service.status(session.session_id, None)).parts[0]
    with pytest.raises(Conflict):
        await service.complete(session.session_id, None, parts=[1, 3],
                               part_blake3={1: first.blake3, 3: "0" * 64})
    checked = {p.part: p.blake3 for p in (await service.status(session.session_id, None)).parts}
    done = await service.complete(session.session_id, None, parts=[1, 3], part_blake3=checked)
    expected = pieces[1] + pieces[3]
    assert done.version.size == len(expected)
    assert done.version.blake3 == blake3.blake3(expected).hexdigest()
    async with http.get("/api/v1/files/content/multi/obj") as resp:
        assert await resp.read() == expected
