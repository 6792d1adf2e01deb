"""Large downloads on a real process cluster (master + 3 workers, RF=3):
chunks striped over every replica, read ahead, and still exact when a
worker is killed in the middle of the read or a replica's copies rot."""

from __future__ import annotations

import asyncio
import os

import blake3
import pytest

from echofs.core.chunk_codec import decode_chunk
from echofs.testing.cluster import ProcessCluster
from echofs.testing.http import download, put_raw
from echofs.testing.metrics import scrape
from echofs.testing.waiting import eventually

MIB = 1024 * 1024
CHUNKS = 12


@pytest.fixture
def cluster(tmp_path):
    # Every read reaches a worker: none is served from the master's memory.
    with ProcessCluster(tmp_path, env={"CHUNK_CACHE_BYTES": "0", "READ_AHEAD": "4"}) as c:
        yield c


async def _gets(cluster: ProcessCluster) -> dict[str, float]:
    """Chunk reads each worker's store has answered so far."""
    counts = {}
    for worker_id, worker in cluster.workers.items():
        assert worker.health_url is not None
        url = worker.health_url.removesuffix("/health") + "/metrics"
        counts[worker_id] = (await scrape(url)).total("echofs_chunk_store_operations_total",
                                                      op="get")
    return counts


async def _chunk_ids(http, file_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    async with http.get(f"/api/v1/files/{file_id}") as resp:
        return [c["chunk_id"] for c in (await resp.json())["chunk_list"]]


async def test_a_large_download_reads_from_every_replica(cluster, http):
    data = os.urandom(CHUNKS * MIB)
    body = await put_raw(http, "striped.bin", data)
    before = await _gets(cluster)
    assert await download(http, body["file_id"]) == data
    after = await _gets(cluster)
    served = {w: after[w] - before[w] for w in after}
    # Consecutive chunks from consecutive replicas: each worker a third.
    assert sum(served.values()) >= CHUNKS
    assert all(n >= CHUNKS // 3 - 1 for n in served.values()), served


async def test_a_worker_killed_in_the_middle_of_a_download_costs_no_byte(cluster, http):
    # Larger than the read-ahead window and the sockets' buffers together:
    # most of the file is still to be read from the workers at the kill.
    data = os.urandom(3 * CHUNKS * MIB + 4321)
    body = await put_raw(http, "killed.bin", data)
    failures_before = cluster.workers_health()["w2"]["failures"]
    hasher, received = blake3.blake3(), 0
    async with http.get(f"/api/v1/files/{body['file_id']}/download") as resp:
        assert resp.status == 200
        async for piece in resp.content.iter_chunked(256 * 1024):
            if received < MIB <= received + len(piece):
                # Reads are in flight to every worker now (read-ahead over
                # the stripe): one of them dies mid-read.
                cluster.kill_worker("w2")
            hasher.update(piece)
            received += len(piece)
            await asyncio.sleep(0.002)  # a client slower than the cluster
    assert not cluster.workers["w2"].running
    assert (received, hasher.hexdigest()) == (len(data), blake3.blake3(data).hexdigest())
    # The download met the dead worker (its stripe's reads failed over).
    assert cluster.workers_health()["w2"]["failures"] > failures_before
    # And again with the worker gone for good.
    assert await download(http, body["file_id"]) == data


async def test_rotten_copies_on_one_replica_are_never_served(cluster, http):
    data = os.urandom(CHUNKS * MIB)
    body = await put_raw(http, "rotten.bin", data)
    chunk_ids = await _chunk_ids(http, body["file_id"])
    for chunk_id in chunk_ids:  # every copy w1 holds, so every stripe meets one
        cluster.flip_chunk_byte("w1", chunk_id, offset=-100)
    async with http.get("/api/v1/health") as resp:
        repairs_before = (await resp.json())["read_repairs_queued"]
    assert await download(http, body["file_id"]) == data
    async with http.get("/api/v1/health") as resp:
        repairs = (await resp.json())["read_repairs_queued"] - repairs_before
    # The stripe asked w1 first for a third of the chunks: each of those
    # reads met a rotten copy, fell to another replica, and queued a repair.
    assert repairs >= CHUNKS // 3 - 1, repairs
    # A ranged read across chunk edges is exact too.
    start, end = MIB - 10, 5 * MIB + 10
    async with http.get(f"/api/v1/files/{body['file_id']}/download",
                        headers={"Range": f"bytes={start}-{end}"}) as resp:
        assert resp.status == 206
        assert await resp.read() == data[start:end + 1]

    async def repaired() -> bool:
        for chunk_id in chunk_ids:
            try:
                decode_chunk(cluster.stored_frame("w1", chunk_id) or b"", chunk_id)
            except Exception:
                return False
        return True

    # The copies reads met were queued for repair (the scrubber gets the rest).
    await eventually(repaired, 60, "w1's rotten copies rewritten")
    assert await download(http, body["file_id"]) == data
