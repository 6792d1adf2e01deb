"""A strong write is acknowledged once a quorum of targets stored each chunk:
a target that hangs (a partition swallowing requests) costs neither the
write timeout nor the copy, which a durable intent has restored later."""

from __future__ import annotations

import asyncio
import os
import time

import aiohttp

from echofs.testing.fakes import FakeWorkerClient
from echofs.testing.http import download
from echofs.testing.node import drain_replication, running_node, stored_chunks

CHUNK = 64 * 1024
WRITE_TIMEOUT = 5.0


async def _chunks(http: aiohttp.ClientSession, file_id: str) -> list[dict]:
    async with http.get(f"/api/v1/files/{file_id}") as resp:
        return (await resp.json())["chunk_list"]


async def _eventually(check, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def test_strong_write_is_acknowledged_at_quorum_when_a_target_hangs(tmp_path):
    # Two stragglers may run in the background at once (pipeline depth 2):
    # the file's other four chunks exercise the copies left to the replicator.
    async with running_node(tmp_path / "d", write_timeout=WRITE_TIMEOUT, chunk_size=CHUNK,
                            pipeline_depth=2) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        await node.master.replicator.stop()  # hold the queue still to look at it
        registry = node.master.registry
        victim = sorted(w.worker_id for w in node.workers)[-1]
        healthy = registry.client(victim)
        assert healthy is not None
        # Its puts do not return until released; the rest goes through.
        hanging = FakeWorkerClient.wrapping(healthy)
        hanging.put.hang()
        registry.register(hanging)

        data = os.urandom(6 * CHUNK)
        started = time.monotonic()
        async with http.put("/api/v1/files/content/q.bin", data=data,
                            headers={"X-EchoFS-Consistency": "strong"}) as resp:
            body = await resp.json()
            assert resp.status == 201, body
        assert time.monotonic() - started < WRITE_TIMEOUT / 3
        assert body["mode"] == "strong" and body["replicas_acked"] == 2
        assert hanging.put.calls == 6

        # Only acknowledged copies are recorded; every missing one has an intent.
        chunks = await _chunks(http, body["file_id"])
        assert len(chunks) == 6
        for chunk in chunks:
            assert len(chunk["replicas"]) == 2 and victim not in chunk["replicas"]
        assert (await node.repo.replication_backlog())[0] == 6
        stragglers = node.master.uploads.stragglers
        assert (stragglers.running, stragglers.cancelled) == (2, 4)

        # The partition heals: the two puts still running land and record
        # their copies; the replicator restores the four that were given up.
        registry.register(healthy)
        hanging.put.release()
        await _eventually(lambda: stragglers.landed == 2)
        await drain_replication(node)
        held = set(stored_chunks(node, victim))
        for chunk in await _chunks(http, body["file_id"]):
            assert sorted(chunk["replicas"]) == sorted(w.worker_id for w in node.workers)
            assert chunk["chunk_id"] in held
        assert await download(http, body["file_id"]) == data


async def test_strong_write_fails_at_once_when_quorum_is_out_of_reach(tmp_path):
    async with running_node(tmp_path / "d", write_timeout=WRITE_TIMEOUT,
                            chunk_size=CHUNK) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        registry = node.master.registry
        first, second, third = (registry.client(w)
                                for w in sorted(w.worker_id for w in node.workers))
        for refusing in (FakeWorkerClient.wrapping(first), FakeWorkerClient.wrapping(second)):
            refusing.put.fail(ConnectionResetError("refused"))
            registry.register(refusing)
        hanging = FakeWorkerClient.wrapping(third)
        hanging.put.hang()
        registry.register(hanging)
        started = time.monotonic()
        async with http.put("/api/v1/files/content/f.bin", data=os.urandom(CHUNK),
                            headers={"X-EchoFS-Consistency": "strong"}) as resp:
            body = await resp.json()
            assert resp.status == 503, body
        assert body["error"]["code"] == "quorum_not_reached"
        # Two of three refused: whatever the hung put does, no quorum. The write
        # says so at once rather than after the write timeout.
        assert time.monotonic() - started < WRITE_TIMEOUT / 3
        assert hanging.put.calls == 1
        assert node.master.uploads.stragglers.running == 0
