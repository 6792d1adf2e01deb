"""A real multi-process cluster (master + 3 workers, RF=3) survives what real
clusters suffer: workers killed mid-write and coming back, two targets down,
bit rot, a wiped disk, and a master killed mid-upload."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator, Callable

import aiohttp
import pytest

from echofs.core.chunk_codec import decode_chunk
from echofs.testing.cluster import ProcessCluster
from echofs.testing.http import download, download_digest, error_of, pattern_digest, put_raw
from echofs.testing.waiting import eventually

MIB = 1024 * 1024


@pytest.fixture
def cluster(tmp_path):
    with ProcessCluster(tmp_path) as c:
        yield c




async def paced_stream(total: int, *, at: int, action: Callable[[], None],
                       pause: float = 0.02) -> AsyncIterator[bytes]:
    """1 MiB pieces of the test pattern, slowly, running ``action`` once
    ``at`` bytes have been sent: a fault in the middle of an upload."""
    from echofs.testing.http import pattern_stream

    sent = 0
    async for piece in pattern_stream(total):
        if sent >= at and action is not None:
            action()
            action = None  # type: ignore[assignment]
        yield piece
        sent += len(piece)
        await asyncio.sleep(pause)


async def _chunk_ids(http, file_id: str) -> list[str]:
    async with http.get(f"/api/v1/files/{file_id}") as resp:
        return [c["chunk_id"] for c in (await resp.json())["chunk_list"]]


async def test_worker_killed_mid_upload_then_back_restores_rf(cluster, http):
    size = 50 * MIB
    body = await put_raw(http, "big.bin", paced_stream(
        size, at=20 * MIB, action=lambda: cluster.kill_worker("w2")))
    assert body["size"] == size
    assert not cluster.workers["w2"].running
    # Readable, byte-exact, while the worker is down.
    assert await download_digest(http, body["file_id"]) == (size, pattern_digest(size))
    cluster.start_worker("w2")
    chunk_ids = set(await _chunk_ids(http, body["file_id"]))
    assert len(chunk_ids) == 50

    async def all_at_rf() -> bool:
        held = [await cluster.chunks_on(w) for w in cluster.workers]
        return all(chunk_ids <= h for h in held)

    await eventually(all_at_rf, 60, "every chunk back on all three workers")


async def test_two_targets_down_fails_strong_write_and_keeps_earlier_data(cluster, http):
    earlier = await put_raw(http, "earlier.txt", b"acknowledged before the outage")
    cluster.kill_worker("w1")
    cluster.kill_worker("w2")
    async with http.put("/api/v1/files/content/new.bin", data=os.urandom(2 * MIB)) as resp:
        assert resp.status == 503
        assert (await error_of(resp))["code"] == "quorum_not_reached"
    async with http.get("/api/v1/files") as resp:
        assert [f["path"] for f in (await resp.json())["files"]] == ["earlier.txt"]
    assert await download(http, earlier["file_id"]) == b"acknowledged before the outage"


async def test_bit_rot_is_never_served_and_is_repaired(cluster, http):
    data = os.urandom(3 * MIB)
    body = await put_raw(http, "rot.bin", data)
    chunk_ids = await _chunk_ids(http, body["file_id"])
    for chunk_id in chunk_ids:
        cluster.flip_chunk_byte("w1", chunk_id, offset=200)
        cluster.flip_chunk_byte("w3", chunk_id, offset=300)
    for _ in range(3):
        assert await download(http, body["file_id"]) == data

    async def repaired() -> bool:
        for worker_id in ("w1", "w3"):
            for chunk_id in chunk_ids:
                try:
                    decode_chunk(cluster.stored_frame(worker_id, chunk_id) or b"", chunk_id)
                except Exception:
                    return False
        return True

    await eventually(repaired, 30, "rotten copies rewritten by read repair or the scrubber")


async def test_wiped_disk_is_refilled_from_surviving_copies(cluster, http):
    body = await put_raw(http, "wipe.bin", os.urandom(5 * MIB))
    chunk_ids = set(await _chunk_ids(http, body["file_id"]))
    assert chunk_ids <= await cluster.chunks_on("w3")
    shutil.rmtree(cluster.store_dir("w3"))
    assert await cluster.chunks_on("w3") == set()

    async def refilled() -> bool:
        return chunk_ids <= await cluster.chunks_on("w3")

    await eventually(refilled, 60, "wiped worker holds every chunk again")


async def test_master_killed_mid_upload_leaves_no_file_and_no_orphans(cluster, tmp_path):
    size = 40 * MIB
    async with aiohttp.ClientSession(base_url=cluster.url) as http:
        with pytest.raises(aiohttp.ClientError):
            await put_raw(http, "doomed.bin", paced_stream(
                size, at=15 * MIB, action=cluster.kill_master))
    stored = set()
    for worker_id in cluster.workers:
        stored |= await cluster.chunks_on(worker_id)
    assert stored, "the upload should have stored chunks before the crash"
    cluster.start_master()
    cluster.wait_for_workers(3)
    async with aiohttp.ClientSession(base_url=cluster.url) as http:
        async with http.get("/api/v1/files") as resp:
            assert (await resp.json())["files"] == []

        async def collected() -> bool:
            for worker_id in cluster.workers:
                if await cluster.chunks_on(worker_id):
                    return False
            return True

        await eventually(collected, 30, "orphan chunks collected from every worker")
