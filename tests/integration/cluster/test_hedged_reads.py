"""A download that meets a frozen worker does not wait out the read timeout.

A worker stopped with SIGSTOP keeps its sockets open and answers nothing:
every chunk read sent to it used to wait the whole ``READ_TIMEOUT`` before
the next replica was tried. Reads are hedged now: once the first replica has
taken longer than its recent p99 (clamped to READ_HEDGE_MIN_DELAY ..
READ_HEDGE_MAX_DELAY), the next one is asked too and the first verified
answer wins. Real processes: the freeze is a real process's, over gRPC.
"""

from __future__ import annotations

import os
import signal
import time

import aiohttp
import pytest

from echofs.testing.cluster import ProcessCluster
from echofs.testing.http import download, put_raw
from echofs.testing.metrics import scrape

MIB = 1024 * 1024
READ_TIMEOUT = 10.0


@pytest.fixture
def cluster(tmp_path):
    # The frozen worker stays "alive" to the master for the whole test (as in
    # the seconds before heartbeats are missed): reads still go to it first.
    env = {"READ_TIMEOUT": str(READ_TIMEOUT), "SUSPECT_AFTER": "60", "DEAD_AFTER": "120",
           # Every read reaches a worker: none is served from the master's memory.
           "CHUNK_CACHE_BYTES": "0"}
    with ProcessCluster(tmp_path, env=env) as c:
        yield c


async def _hedges(cluster: ProcessCluster, outcome: str) -> float:
    return (await scrape(f"{cluster.url}/metrics")).total("echofs_read_hedges_total",
                                                          outcome=outcome)


async def test_download_hedges_around_a_frozen_worker(cluster):
    data = os.urandom(6 * MIB + 12345)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(base_url=cluster.url, timeout=timeout) as http:
        body = await put_raw(http, "hedged.bin", data)
        # Warm up: the master learns each worker's read latency.
        assert await download(http, body["file_id"]) == data

        # Freeze the replica reads prefer (the lowest smoothed RTT): every
        # chunk's first read goes to it.
        health = cluster.workers_health()
        frozen = min(health, key=lambda w: (health[w]["rtt_ms"] or 0.0, w))
        started_before, won_before = (await _hedges(cluster, "started"),
                                      await _hedges(cluster, "won"))
        proc = cluster.workers[frozen].proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            assert await download(http, body["file_id"]) == data
            elapsed = time.monotonic() - started
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        assert elapsed < 2.0, f"download took {elapsed:.1f}s with {frozen} frozen"
        assert await _hedges(cluster, "started") > started_before
        assert await _hedges(cluster, "won") > won_before

        # Thawed, the worker serves again and nothing was lost or damaged.
        assert await download(http, body["file_id"]) == data
