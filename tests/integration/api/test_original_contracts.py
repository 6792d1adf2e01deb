"""The original's API contracts on an in-process node: its envelope beside
our fields, the upload with consistency parameters honoured, a single-user
read by path, the replication stats from the real queue."""

from __future__ import annotations

import os
import shutil

import aiohttp
import pytest

from echofs.testing.http import error_of
from echofs.testing.node import drain_replication, running_node, worker_root

KIB = 1024


@pytest.fixture
async def node(tmp_path):
    # Small chunks: a file of several chunks costs little.
    async with running_node(tmp_path / "d", chunk_size=64 * KIB,
                            replication_interval=3600.0) as n:
        yield n


@pytest.fixture
async def http(node):
    async with aiohttp.ClientSession(base_url=node.url) as session:
        yield session


def form(data: bytes, name: str, *fields: tuple[str, str], file_first: bool = True
         ) -> aiohttp.FormData:
    """A multipart form; the original's clients send the file first."""
    built = aiohttp.FormData()
    if not file_first:
        for key, value in fields:
            built.add_field(key, value)
    built.add_field("file", data, filename=name, content_type="application/octet-stream")
    if file_first:
        for key, value in fields:
            built.add_field(key, value)
    return built


async def test_upload_list_and_delete_answer_with_the_original_envelope(http):
    async with http.post("/api/v1/files/upload", data=form(b"hello\n", "example.txt",
                                                           ("user_id", "test-user"))) as resp:
        body = await resp.json()
        assert resp.status == 201, body
    assert body["success"] is True and body["message"] == "File uploaded successfully"
    data = body["data"]
    assert data["file_id"] == body["file_id"] and data["file_size"] == 6
    assert data["owner_id"] == "test-user" and data["chunks"] == 1
    assert data["consistency_mode"] == body["mode"]
    async with http.get("/api/v1/files") as resp:
        listing = await resp.json()
    assert listing["success"] is True and listing["count"] == 1
    assert [f["file_id"] for f in listing["data"]] == [body["file_id"]]
    assert listing["data"][0]["name"] == "example.txt" and listing["data"][0]["size"] == 6
    async with http.delete(f"/api/v1/files/{body['file_id']}") as resp:
        deleted = await resp.json()
    assert deleted["success"] is True and deleted["deleted_versions"] == 1


@pytest.mark.parametrize("file_first", [True, False])
@pytest.mark.parametrize(("fields", "mode", "letter"), [
    ((("consistency", "strong"),), "strong", "C"),
    ((("consistency", "available"),), "available", "A"),
    ((("consistency", "auto"), ("hint", "Strong")), "strong", "C"),
    ((("consistency", "auto"), ("hint", "Available")), "available", "A"),
])
async def test_the_consistency_upload_writes_in_the_mode_asked(http, node, fields, mode,
                                                               letter, file_first):
    data = os.urandom(3 * KIB)
    async with http.post("/api/v1/files/upload/consistency", data=form(
            data, "test.txt", ("user_id", "test-user"), *fields,
            file_first=file_first)) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    assert body["success"] is True and body["data"]["file_id"] == body["file_id"]
    info = body["consistency"]
    assert (info["mode_used"], info["mode"], body["mode"]) == (letter, mode, mode)
    assert info["latency"].endswith("ms") and info["version"] == 1
    if mode == "strong":
        # A majority acknowledged; the third copy may have been late.
        assert info["replicas"] >= 2
    else:
        # One copy acknowledged; the replicator makes the other two.
        assert info["replicas"] == 1
    async with http.get(f"/api/v1/files/{body['file_id']}/download") as resp:
        assert await resp.read() == data


async def test_a_large_file_whose_fields_come_late_is_written_strong(http):
    data = os.urandom(200 * KIB)  # four chunks: the first is full before the fields
    async with http.post("/api/v1/files/upload/consistency", data=form(
            data, "big.bin", ("consistency", "available"))) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    assert body["consistency"]["mode_used"] == "C"
    assert body["consistency"]["requested"] == "available"
    async with http.post("/api/v1/files/upload/consistency", data=form(
            data, "big2.bin", ("consistency", "available"), file_first=False)) as resp:
        body = await resp.json()
    assert body["consistency"]["mode_used"] == "A" and body["chunks"] == 4


async def test_the_consistency_upload_refuses_bad_fields_before_storing(http, node):
    for fields in ((("consistency", "eventual"),), (("hint", "sometimes"),)):
        async with http.post("/api/v1/files/upload/consistency",
                             data=form(b"x", "bad.txt", *fields)) as resp:
            assert resp.status == 400
            assert (await error_of(resp))["code"] in ("invalid_consistency", "invalid_hint")
    async with http.post("/api/v1/files/upload/consistency",
                         data=form(b"x", "bad.txt", ("consistency", "eventual"),
                                   file_first=False)) as resp:
        assert resp.status == 400
    async with http.post("/api/v1/files/upload/consistency", json={"file": "x"}) as resp:
        assert resp.status == 400
    async with http.get("/api/v1/files") as resp:
        assert (await resp.json())["count"] == 0


async def test_single_user_read_by_path_finds_the_file_whoever_it_was_for(http):
    async with http.post("/api/v1/files/upload", data=form(b"hello\n", "example.txt",
                                                           ("user_id", "test-user"))):
        pass
    async with http.get("/api/v1/files/content/example.txt") as resp:
        assert resp.status == 200 and await resp.read() == b"hello\n"
    async with http.get("/api/v1/files/content/example.txt?user_id=someone") as resp:
        assert resp.status == 404
    # The local user's own file of that name comes first...
    async with http.put("/api/v1/files/content/example.txt", data=b"mine\n"):
        pass
    async with http.get("/api/v1/files/content/example.txt") as resp:
        assert await resp.read() == b"mine\n"
    async with http.get("/api/v1/files/content/example.txt?user_id=test-user") as resp:
        assert await resp.read() == b"hello\n"
    # ...two other owners' files of one name are ambiguous.
    async with http.post("/api/v1/files/upload", data=form(b"x", "shared.txt",
                                                           ("user_id", "a"))):
        pass
    async with http.post("/api/v1/files/upload", data=form(b"y", "shared.txt",
                                                           ("user_id", "b"))):
        pass
    async with http.get("/api/v1/files/content/shared.txt") as resp:
        assert resp.status == 409
        assert (await error_of(resp))["code"] == "ambiguous_path"
    async with http.get("/api/v1/files/content/nothing.txt") as resp:
        assert resp.status == 404


def break_worker(node, worker_id: str) -> None:
    """Make a worker's store fail every write: its root becomes a plain file."""
    root = worker_root(node, worker_id)
    shutil.rmtree(root)
    root.write_bytes(b"not a directory")


async def test_replication_stats_follow_the_queue(http, node):
    async with http.get("/api/v1/replication/stats") as resp:
        empty = await resp.json()
        assert resp.status == 200, empty
    assert empty["success"] is True and empty["queue"]["depth"] == 0
    assert empty["data"]["queue"] == empty["queue"] and empty["replication_factor"] == 3
    # A worker that cannot store: a strong write reaches its quorum on the
    # other two and owes it one copy per chunk, queued in the metadata store.
    break_worker(node, "w3")
    async with http.put("/api/v1/files/content/a.bin", data=os.urandom(100 * KIB)) as resp:
        assert resp.status == 201 and (await resp.json())["chunks"] == 2
    async with http.get("/api/v1/replication/stats") as resp:
        owed = await resp.json()
    queue = owed["queue"]
    assert queue["depth"] == 2 and queue["by_target_worker"] == {"w3": 2}
    assert sum(queue["by_reason"].values()) == 2
    assert queue["oldest_age_seconds"] is not None
    # The worker comes back: the copies are made and the queue empties.
    worker_root(node, "w3").unlink()
    await drain_replication(node)
    async with http.get("/api/v1/replication/stats") as resp:
        done = await resp.json()
    assert done["queue"]["depth"] == 0 and done["queue"]["by_reason"] == {}
    assert done["replicator"]["copies_made"] >= 2
