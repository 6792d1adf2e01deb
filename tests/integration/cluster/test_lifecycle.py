"""Cluster lifecycle: clean SIGTERM of every role, and restarts that keep their
work (a worker's data, a master's replication queue). `echofs dev cluster` is
in test_dev_cluster.py."""

from __future__ import annotations

import os

import aiohttp

from echofs.testing.cluster import ProcessCluster
from echofs.testing.http import download, put_raw
from echofs.testing.waiting import eventually

MIB = 1024 * 1024


async def test_sigterm_is_clean_and_a_restarted_worker_serves_its_data(tmp_path):
    with ProcessCluster(tmp_path) as cluster:
        async with aiohttp.ClientSession(base_url=cluster.url) as http:
            data = os.urandom(3 * MIB)
            body = await put_raw(http, "keep.bin", data)
            assert cluster.workers["w1"].terminate() == 0
            assert "shutting down" in cluster.workers["w1"].log()
            cluster.start_worker("w1")
            cluster.wait_for_workers(3)
            # Only w1 can serve now: its data survived the restart.
            cluster.kill_worker("w2")
            cluster.kill_worker("w3")
            assert await download(http, body["file_id"]) == data
        assert cluster.master.terminate() == 0


async def test_restarted_master_resumes_its_replication_queue(tmp_path):
    with ProcessCluster(tmp_path) as cluster:
        cluster.kill_worker("w3")
        async with aiohttp.ClientSession(base_url=cluster.url) as http:
            body = await put_raw(http, "q.bin", os.urandom(4 * MIB))
            async with http.get("/api/v1/health") as resp:
                assert (await resp.json())["replication_queue"]["depth"] == 4
            chunk_ids = {c["chunk_id"] for c in (await (await http.get(
                f"/api/v1/files/{body['file_id']}")).json())["chunk_list"]}
        cluster.kill_master()  # the queue is all that remembers w3's missing copies
        cluster.start_master()
        cluster.start_worker("w3")
        cluster.wait_for_workers(3)

        async def restored() -> bool:
            return chunk_ids <= await cluster.chunks_on("w3")

        await eventually(restored, 30, "w3 given the copies queued before the master crashed")
        async with aiohttp.ClientSession(base_url=cluster.url) as http, \
                http.get("/api/v1/health") as resp:
            queue = (await resp.json())["replication_queue"]
        assert queue["depth"] == 0
