"""The Python client against a real embedded node: every endpoint, streamed
transfers with progress, typed results and typed errors, the blocking
wrapper, and accounts."""

from __future__ import annotations

import asyncio
import io
import os

import blake3
import pytest

from echofs.client import (
    AsyncClient,
    Client,
    ConnectionFailed,
    EchoFSClientError,
    FileDetails,
    Forbidden,
    NotFound,
    Unauthorized,
    UploadResult,
)
from echofs.testing.http import pattern_digest, pattern_stream
from echofs.testing.node import running_node

MIB = 1024 * 1024
SECRET = "k" * 40


@pytest.fixture
async def client(node):
    async with AsyncClient(node.url) as c:
        yield c


class Progress:
    def __init__(self) -> None:
        self.calls: list[tuple[int, int | None]] = []

    def __call__(self, done: int, total: int | None) -> None:
        self.calls.append((done, total))

    def check(self, total: int) -> None:
        done = [d for d, _ in self.calls]
        assert done == sorted(done), "progress went backwards"
        assert self.calls[0][0] == 0 and self.calls[-1] == (total, total)
        assert len(self.calls) >= 3, self.calls


async def test_upload_from_a_path_streams_with_progress_and_round_trips(client, tmp_path):
    data = os.urandom(3 * MIB + 123)
    source = tmp_path / "source.bin"
    source.write_bytes(data)
    progress = Progress()
    up = await client.upload(source, "docs/source.bin", progress=progress)
    assert isinstance(up, UploadResult)
    assert (up.file.path, up.size, up.version, up.chunks) == ("docs/source.bin", len(data), 1, 4)
    assert up.blake3 == blake3.blake3(data).hexdigest()
    progress.check(len(data))

    down = Progress()
    result = await client.download(up.file_id, tmp_path, progress=down)
    assert result.dest == tmp_path / "source.bin" and result.verified and not result.stale
    assert (tmp_path / "source.bin").read_bytes() == data
    down.check(len(data))
    # No temporary file is left behind.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data", "source.bin"]


async def test_every_kind_of_source(client, tmp_path):
    size = 2 * MIB + 5
    streamed = await client.upload(pattern_stream(size, piece=300_000), "a/streamed")
    assert streamed.blake3 == pattern_digest(size, piece=300_000)
    assert streamed.size == size

    raw = b"bytes in memory"
    assert (await client.upload(raw, "a/bytes")).size == len(raw)

    handle = io.BytesIO(b"x" * 1000)
    assert (await client.upload(handle, "a/filelike")).size == 1000

    pieces = [b"one ", b"two ", b"three"]
    sync_iter = await client.upload(iter(pieces), "a/iterable")
    assert await client.read(sync_iter.file_id) == b"one two three"

    empty = await client.upload(b"", "a/empty")
    assert empty.size == 0 and await client.read(empty.file_id) == b""

    form = await client.upload_form(b"multipart body", filename="form.txt", path="a/form.txt",
                                    user_id="someone", consistency="strong")
    assert (form.file.path, form.file.owner, form.mode) == ("a/form.txt", "someone", "strong")


async def test_listing_stat_versions_range_and_delete(client, tmp_path):
    first = await client.upload(b"version one", "v/file.txt")
    second = await client.upload(b"version two!", "v/file.txt")
    assert second.file_id == first.file_id and second.version == 2
    for i in range(5):
        await client.upload(f"{i}".encode(), f"v/more/{i}.txt")

    page = await client.list_files("v/", limit=2)
    assert len(page.files) == 2 and page.next_cursor
    everything = [f.path async for f in client.iter_files("v/", page_size=2)]
    assert everything == ["v/file.txt"] + [f"v/more/{i}.txt" for i in range(5)]

    details = await client.stat(first.file_id)
    assert isinstance(details, FileDetails)
    assert details.current_version == 2 and details.version.size == len(b"version two!")
    assert details.consistency_mode in ("strong", "hybrid", "available")
    assert len(details.chunks) == 1 and len(details.chunks[0].replicas) == 3
    old = await client.stat(first.file_id, version=1)
    assert old.version.version == 1 and not old.version.current

    listing = await client.versions(first.file_id)
    assert [v.version for v in listing.versions] == [2, 1]
    assert listing.versions[0].current

    assert await client.read(first.file_id, version=1) == b"version one"
    assert await client.read(first.file_id, byte_range=(8, None)) == b"two!"
    assert await client.read(first.file_id, byte_range=(0, 6)) == b"version"
    by_path = await client.download_path("v/file.txt", tmp_path / "copy.txt")
    assert (tmp_path / "copy.txt").read_bytes() == b"version two!" and by_path.version == 2

    assert (await client.resolve("v/file.txt")).file_id == first.file_id
    assert (await client.resolve(first.file_id)).path == "v/file.txt"
    assert (await client.find("v/more/3.txt")).path == "v/more/3.txt"

    gone = await client.delete(first.file_id, version=1)
    assert gone.deleted_versions == 1
    assert [v.version for v in (await client.versions(first.file_id)).versions] == [2]
    assert (await client.delete(first.file_id)).deleted_versions == 1
    with pytest.raises(NotFound) as caught:
        await client.stat(first.file_id)
    assert caught.value.status == 404 and caught.value.code == "not_found"


async def test_download_to_a_file_object_and_a_named_file(client, tmp_path):
    up = await client.upload(b"to a buffer", "b/buf.txt")
    buffer = io.BytesIO()
    result = await client.download(up.file_id, buffer)
    assert buffer.getvalue() == b"to a buffer" and result.dest is None and result.verified
    target = tmp_path / "renamed.txt"
    target.write_bytes(b"old content that is longer than the new one")
    await client.download(up.file_id, target)
    assert target.read_bytes() == b"to a buffer"


async def test_errors_are_typed_and_carry_the_server_message(client, tmp_path):
    with pytest.raises(NotFound):
        await client.stat("0" * 32)
    with pytest.raises(NotFound, match="no file at path"):
        await client.find("does/not/exist")
    with pytest.raises(EchoFSClientError) as caught:
        await client.upload(b"x", "../escape")
    assert caught.value.status == 400 and caught.value.code == "invalid_name"
    with pytest.raises(EchoFSClientError) as caught:
        await client.read((await client.upload(b"abc", "r.txt")).file_id,
                          byte_range=(10, 20))
    assert caught.value.status == 416
    with pytest.raises(NotFound):  # nothing written on failure
        await client.download("f" * 32, tmp_path / "never.bin")
    assert not (tmp_path / "never.bin").exists()


async def test_an_unreachable_server_is_a_connection_error(tmp_path):
    from echofs.testing.process import free_port

    async with AsyncClient(f"127.0.0.1:{free_port()}") as c:
        with pytest.raises(ConnectionFailed) as caught:
            await c.health()
    assert caught.value.status == 0 and "cannot connect" in caught.value.message


async def test_cluster_and_consistency_admin_calls(client):
    up = await client.upload(b"consistent", "c/file.txt")
    assert (await client.health())["status"] == "ok"
    workers = await client.workers()
    assert sorted(w.worker_id for w in workers) == ["w1", "w2", "w3"]
    assert all(w.state == "alive" and w.capacity_bytes for w in workers)

    assert (await client.mode(up.file_id)).object_id == up.file_id
    assert await client.set_override("available") == "available"
    assert (await client.consistency_status())["override"] == "available"
    assert (await client.mode(up.file_id)).mode == "available"
    assert await client.set_override(None) is None

    assert await client.add_critical_keys([up.file_id]) == [up.file_id]
    assert await client.critical_keys() == [up.file_id]
    assert await client.remove_critical_keys([up.file_id]) == []

    pinned = await client.set_hint(up.file_id, "available")
    assert pinned.mode == "available" and pinned.reason == "hint"
    transitions = await client.transitions(object_id=up.file_id)
    assert transitions and transitions[0].to_mode == "available"
    assert transitions[0].object_id == up.file_id
    with pytest.raises(EchoFSClientError) as caught:
        await client.set_override("sometimes")
    assert caught.value.status == 400 and caught.value.code == "invalid_mode"


async def test_the_blocking_client(node, tmp_path):
    """From a plain thread, as a script would use it (the node keeps serving
    on this test's event loop meanwhile)."""
    source = tmp_path / "sync.bin"
    source.write_bytes(os.urandom(MIB + 1))

    def script() -> tuple[UploadResult, bytes, list[str]]:
        with Client(node.url) as c:
            up = c.upload(source, "sync/file.bin")
            c.download(up.file_id, tmp_path / "back.bin")
            paths = [f.path for f in c.all_files("sync/")]
            with pytest.raises(NotFound):
                c.stat("a" * 32)
            return up, (tmp_path / "back.bin").read_bytes(), paths

    up, back, paths = await asyncio.to_thread(script)
    assert back == source.read_bytes() and up.size == MIB + 1
    assert paths == ["sync/file.bin"]


async def test_accounts_tokens_and_isolation(tmp_path):
    async with running_node(tmp_path / "auth", jwt_secret=SECRET) as node:
        anonymous = AsyncClient(node.url)
        with pytest.raises(Unauthorized) as caught:
            await anonymous.list_files()
        assert caught.value.code == "missing_token"
        await anonymous.close()

        async with AsyncClient(node.url) as admin, AsyncClient(node.url) as user:
            session = await admin.register("admin-user", "long enough password")
            assert session.user.is_admin and session.token and session.expires_in
            await user.register("plain-user", "another password")
            again = await user.login("plain-user", "another password")
            assert not again.user.is_admin and user.token == again.token
            me = await user.me()
            assert (me.auth, me.user.username) == ("jwt", "plain-user")

            mine = await user.upload(b"private", "secret.txt")
            with pytest.raises(NotFound):  # another user's file does not exist for you
                await admin.stat(mine.file_id)
            assert [f.path for f in (await admin.list_files(all_users=True)).files] == [
                "secret.txt"]
            with pytest.raises(Forbidden):
                await user.workers()
            with pytest.raises(Forbidden):
                await user.set_override("strong")
            assert len(await admin.workers()) == 3
            with pytest.raises(Unauthorized):
                await AsyncClient(node.url).login("plain-user", "wrong password")


async def test_open_mode_identity(client):
    me = await client.me()
    assert (me.auth, me.user.username, me.user.role) == ("open", "local", "admin")
    with pytest.raises(EchoFSClientError) as caught:
        await client.login("someone", "some password")
    assert (caught.value.status, caught.value.code) == (400, "auth_disabled")


async def test_an_oversize_upload_is_refused_with_the_servers_error(tmp_path):
    """Whether the size is declared up front or only found while streaming,
    the caller gets the server's 413, not a broken pipe."""
    async with running_node(tmp_path / "small", max_upload_size=MIB) as node, \
            AsyncClient(node.url) as client:
        for source in (os.urandom(4 * MIB), pattern_stream(4 * MIB)):
            with pytest.raises(EchoFSClientError) as caught:
                await client.upload(source, "too/big.bin")
            assert (caught.value.status, caught.value.code) == (413, "payload_too_large")
        assert (await client.list_files()).files == []
