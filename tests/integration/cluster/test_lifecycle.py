"""Cluster lifecycle: clean SIGTERM of every role, restarts that keep their
work (a worker's data, a master's replication queue), and `echofs dev cluster`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import aiohttp

from echofs.testing.cluster import FAST_ENV, ProcessCluster
from echofs.testing.http import download, put_raw
from echofs.testing.process import free_port
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


def _free_block() -> tuple[int, int]:
    """HTTP and gRPC base ports such that every port the dev cluster derives
    from them (worker i: gRPC base+i, HTTP base+10+i) is free too."""
    import socket

    def free(p: int) -> bool:
        with socket.socket() as sock:
            return sock.connect_ex(("127.0.0.1", p)) != 0

    while True:
        port, grpc = free_port(), free_port()
        wanted = [port, grpc, *(grpc + i for i in (1, 2, 3)), *(port + 10 + i for i in (1, 2, 3))]
        if max(wanted) < 65536 and all(free(p) for p in wanted):
            return port, grpc


def test_dev_cluster_starts_members_and_stops_them_on_sigterm(tmp_path):
    port, grpc = _free_block()
    log_file = (tmp_path / "dev-cluster.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "echofs", "dev", "cluster", "--workers", "3",
         "--port", str(port), "--grpc-port", str(grpc), "--data-dir", str(tmp_path / "c")],
        # A file, not a pipe: a pipe nobody reads until the end fills up and
        # blocks the members' logging, and with it their heartbeats.
        stdout=subprocess.DEVNULL, stderr=log_file, env={**os.environ, **FAST_ENV},
    )
    try:
        deadline = time.monotonic() + 20
        alive = 0
        while time.monotonic() < deadline and alive < 3:
            try:
                with urllib.request.urlopen(
                        f"http://127.0.0.1:{port}/api/v1/workers/health", timeout=1) as resp:
                    alive = json.load(resp)["alive"]
            except OSError:
                pass
            time.sleep(0.1)
        assert alive == 3
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        log = (tmp_path / "dev-cluster.log").read_text()
        assert log.count("shutting down") == 4
    finally:
        if proc.poll() is None:
            proc.kill()
        log_file.close()
