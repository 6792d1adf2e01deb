"""The three modes in the data path of an embedded node (master, controller
and workers in one process)."""

from __future__ import annotations

import os

import aiohttp

from echofs.testing.http import put_raw, upload
from echofs.testing.node import running_node

MIB = 1024 * 1024


async def _chunks(http, file_id: str) -> list[dict]:
    async with http.get(f"/api/v1/files/{file_id}") as resp:
        return (await resp.json())["chunk_list"]


async def test_hybrid_write_acknowledges_one_copy_and_queues_the_rest(tmp_path):
    async with running_node(tmp_path / "d") as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        await node.master.replicator.stop()  # hold the queue still to look at it
        async with http.put("/api/v1/files/content/h.bin", data=os.urandom(2 * MIB),
                            headers={"X-EchoFS-Consistency": "auto"}) as resp:
            assert resp.headers["X-EchoFS-Mode"] == "strong"
        form = aiohttp.FormData()
        form.add_field("consistency", "available")
        form.add_field("file", os.urandom(2 * MIB), filename="a.bin")
        async with http.post("/api/v1/files/upload", data=form) as resp:
            body = await resp.json()
            assert resp.status == 201 and body["mode"] == "available"
            assert resp.headers["X-EchoFS-Mode"] == "available"
        assert body["replicas_acked"] == 1
        for chunk in await _chunks(http, body["file_id"]):
            assert len(chunk["replicas"]) == 1
        assert (await node.repo.replication_backlog())[0] == 2 * 2  # 2 chunks x 2 copies
        node.master.replicator.start()
        await node.master.replicator.run_once()
        for chunk in await _chunks(http, body["file_id"]):
            assert len(chunk["replicas"]) == 3


async def test_available_read_serves_the_newest_assemblable_version_marked_stale(tmp_path):
    async with running_node(tmp_path / "d") as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        v1 = await put_raw(http, "doc.txt", b"version one")
        async with http.post("/api/v1/consistency/override", json={"mode": "available"}) as r:
            assert r.status == 200
        await node.master.replicator.stop()
        v2 = await put_raw(http, "doc.txt", b"version two, one copy only")
        assert v2["mode"] == "available" and v2["version"] == 2
        (only,) = (await _chunks(http, v2["file_id"]))[0]["replicas"]
        for _ in range(3):  # its only holder becomes unreachable
            node.master.registry.observe_failure(only)
        async with http.get(f"/api/v1/files/{v1['file_id']}/download") as resp:
            assert resp.status == 200
            assert await resp.read() == b"version one"
            assert resp.headers["X-EchoFS-Stale"] == "true"
            assert resp.headers["X-EchoFS-Version"] == "1"
            assert resp.headers["X-EchoFS-Mode"] == "available"
        async with http.get("/api/v1/health") as resp:
            assert (await resp.json())["consistency"]["stale_reads"] == 1
        # Strong reads never go stale: with the override gone, 503 or the latest.
        async with http.delete("/api/v1/consistency/override") as r:
            assert r.status == 200


async def test_strong_read_is_never_stale(tmp_path):
    async with running_node(tmp_path / "d") as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        await upload(http, "s.txt", b"old")
        await node.master.replicator.stop()
        async with http.put("/api/v1/files/content/s.txt", data=b"new",
                            headers={"X-EchoFS-Consistency": "available"}) as resp:
            body = await resp.json()
            assert body["mode"] == "available"
        (only,) = (await _chunks(http, body["file_id"]))[0]["replicas"]
        for _ in range(3):
            node.master.registry.observe_failure(only)
        # The file's mode (the controller's) is strong: the latest version,
        # from the suspect holder if need be, never an older one.
        async with http.get(f"/api/v1/files/{body['file_id']}/download") as resp:
            assert resp.status == 200
            assert await resp.read() == b"new"
            assert "X-EchoFS-Stale" not in resp.headers
            assert resp.headers["X-EchoFS-Mode"] == "strong"


async def test_bad_consistency_hint_is_400(tmp_path):
    async with running_node(tmp_path / "d") as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        async with http.put("/api/v1/files/content/x", data=b"x",
                            headers={"X-EchoFS-Consistency": "eventual"}) as resp:
            assert resp.status == 400
            assert (await resp.json())["error"]["code"] == "invalid_consistency"
        for method, path, body in [("POST", "hint", {"object_id": "f", "hint": "nope"}),
                                   ("POST", "override", {"mode": "x"}),
                                   ("POST", "critical-keys", {"keys": []}),
                                   ("GET", "mode", None)]:
            async with http.request(method, f"/api/v1/consistency/{path}", json=body) as resp:
                assert resp.status == 400, path
