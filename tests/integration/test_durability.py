"""Damage the stores under a running node: lost records, bit rot, wiped and
broken workers. Downloads stay correct, corrupt bytes are never served, and
bad copies are repaired. Damage is done to the volume files on disk, as a
disk would do it (``echofs.testing.disk``), never through the store."""

from __future__ import annotations

import os
import shutil

from echofs.core.chunk_codec import decode_chunk
from echofs.testing.http import download, error_of, upload
from echofs.testing.node import (
    drain_replication,
    flip_chunk_byte,
    lose_chunk,
    stored_chunks,
    stored_frame,
    worker_root,
)

MIB = 1024 * 1024


async def _chunk_list(http, file_id: str) -> list[dict]:
    async with http.get(f"/api/v1/files/{file_id}") as resp:
        return (await resp.json())["chunk_list"]


async def _repair(node) -> None:
    """One scrub cycle, then drain the replication queue."""
    await node.master.scrubber.scrub_all()
    await drain_replication(node)


async def test_lost_chunk_records_fall_back_and_are_repaired(http, node):
    data = os.urandom(3 * MIB)
    file_id = (await upload(http, "f.bin", data))["file_id"]
    chunks = await _chunk_list(http, file_id)
    for chunk in chunks:  # two of three copies of every chunk gone
        for worker_id in chunk["replicas"][:2]:
            lose_chunk(node, worker_id, chunk["chunk_id"])
    assert await download(http, file_id) == data
    report = await node.master.scrubber.scrub_all()
    assert report.bad == 2 * len(chunks)
    await _repair(node)
    for chunk in chunks:
        for worker_id in chunk["replicas"]:
            decode_chunk(stored_frame(node, worker_id, chunk["chunk_id"]) or b"",
                         chunk["chunk_id"])  # raises unless a good copy is on disk


async def test_corrupt_copies_are_never_served_and_are_repaired(http, node):
    data = os.urandom(2 * MIB)
    file_id = (await upload(http, "rot.bin", data))["file_id"]
    chunks = await _chunk_list(http, file_id)
    for chunk in chunks:
        for worker_id in chunk["replicas"][:2]:
            flip_chunk_byte(node, worker_id, chunk["chunk_id"], offset=100)
    for _ in range(3):
        assert await download(http, file_id) == data
    await _repair(node)
    for chunk in chunks:
        for worker_id in chunk["replicas"]:
            frame = stored_frame(node, worker_id, chunk["chunk_id"]) or b""
            decode_chunk(frame, chunk["chunk_id"])  # raises if still corrupt


async def test_a_read_that_meets_a_corrupt_copy_queues_its_repair(http, node):
    data = os.urandom(MIB // 2)
    file_id = (await upload(http, "rr.bin", data))["file_id"]
    (chunk,) = await _chunk_list(http, file_id)
    good, *rotten = chunk["replicas"]
    for worker_id in rotten:
        flip_chunk_byte(node, worker_id, chunk["chunk_id"], offset=80)
    # Put the good copy last (as a replica hedged around is) so the read
    # tries the rotten ones first, whichever replica its stripe starts at.
    node.master.chunk_io.read_latencies.note_lagging(good)
    assert await download(http, file_id) == data
    assert (await node.repo.replication_backlog())[0] == len(rotten)
    await drain_replication(node)
    for worker_id in rotten:
        decode_chunk(stored_frame(node, worker_id, chunk["chunk_id"]) or b"",
                     chunk["chunk_id"])


async def test_all_copies_corrupt_is_a_clean_503_not_bad_bytes(http, node):
    file_id = (await upload(http, "dead.bin", os.urandom(MIB // 2)))["file_id"]
    for worker in node.workers:
        for chunk_id in stored_chunks(node, worker.worker_id):
            flip_chunk_byte(node, worker.worker_id, chunk_id, offset=50)
    async with http.get(f"/api/v1/files/{file_id}/download") as resp:
        assert resp.status == 503
        assert (await error_of(resp))["code"] == "chunk_unavailable"


async def test_corruption_after_first_chunk_cuts_the_stream(http, node):
    data = os.urandom(3 * MIB)
    file_id = (await upload(http, "cut.bin", data))["file_id"]
    last = (await _chunk_list(http, file_id))[-1]
    for worker_id in last["replicas"]:
        flip_chunk_byte(node, worker_id, last["chunk_id"], offset=64)
    received = b""
    failed = False
    async with http.get(f"/api/v1/files/{file_id}/download") as resp:
        assert resp.status == 200
        try:
            async for piece in resp.content.iter_chunked(65536):
                received += piece
        except Exception:
            failed = True
    assert failed or len(received) < len(data)
    assert data.startswith(received)  # whatever arrived was right


async def test_wiped_worker_does_not_break_reads_and_is_refilled(http, node):
    data = os.urandom(4 * MIB)
    file_id = (await upload(http, "wipe.bin", data))["file_id"]
    shutil.rmtree(worker_root(node, "w2"))
    assert await download(http, file_id) == data
    await _repair(node)
    chunks = await _chunk_list(http, file_id)
    for chunk in chunks:
        decode_chunk(stored_frame(node, "w2", chunk["chunk_id"]) or b"", chunk["chunk_id"])


async def _break_worker(node, worker_id: str) -> None:
    """Make a worker's store fail every write: its root becomes a plain file."""
    root = worker_root(node, worker_id)
    shutil.rmtree(root)
    root.write_bytes(b"not a directory")


async def test_one_broken_worker_still_reaches_quorum_and_queues_repair(http, node):
    await _break_worker(node, "w3")
    data = os.urandom(2 * MIB)
    body = await upload(http, "q.bin", data)
    assert body["replicas_acked"] == 2
    depth, _ = await node.repo.replication_backlog()
    assert depth == 2  # one missing copy per chunk, durably queued
    assert await download(http, body["file_id"]) == data
    # The worker comes back: the queued copies are written to it.
    worker_root(node, "w3").unlink()
    await drain_replication(node)
    for chunk in await _chunk_list(http, body["file_id"]):
        assert len(chunk["replicas"]) == 3


async def test_two_broken_workers_fail_the_write_with_503_and_no_file(http, node):
    earlier = await upload(http, "earlier.bin", b"acknowledged before the failure")
    await _break_worker(node, "w1")
    await _break_worker(node, "w2")
    async with http.put("/api/v1/files/content/q.bin", data=os.urandom(MIB)) as resp:
        assert resp.status == 503
        assert (await error_of(resp))["code"] == "quorum_not_reached"
    async with http.get("/api/v1/files") as resp:
        assert [f["path"] for f in (await resp.json())["files"]] == ["earlier.bin"]
    assert await download(http, earlier["file_id"]) == b"acknowledged before the failure"


async def test_an_upload_longer_than_the_collector_grace_keeps_its_chunks(tmp_path):
    """The collector runs every 0.1 s with a 0.5 s grace while a slow upload
    takes seconds: the upload keeps its chunks alive, and nothing is lost."""
    import asyncio

    import aiohttp

    from echofs.testing.node import running_node

    async def slow_body():
        for _ in range(8):
            yield os.urandom(MIB // 2)
            await asyncio.sleep(0.3)

    async with running_node(tmp_path / "d", gc_grace=0.5, gc_interval=0.1,
                            chunk_size=MIB // 2) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        async with http.put("/api/v1/files/content/slow.bin", data=slow_body()) as resp:
            body = await resp.json()
            assert resp.status == 201, body
        await asyncio.sleep(0.5)  # several collector passes after the commit
        assert len(await download(http, body["file_id"])) == 4 * MIB


async def test_new_placements_avoid_a_suspect_worker_when_enough_are_live(tmp_path):
    import aiohttp

    from echofs.testing.node import running_node

    async with running_node(tmp_path / "d", workers=5) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        for _ in range(3):  # three failed calls: w2 is suspect though it heartbeats
            node.master.registry.observe_failure("w2")
        assert node.master.registry.liveness("w2") == "suspect"
        body = await upload(http, "p.bin", os.urandom(4 * MIB))
        assert body["replicas_acked"] == 3
        for chunk in await _chunk_list(http, body["file_id"]):
            assert len(chunk["replicas"]) == 3 and "w2" not in chunk["replicas"]
        assert (await node.repo.replication_backlog())[0] == 0


async def test_sweeper_removes_copies_no_metadata_knows(http, node):
    from echofs.core.chunk_codec import encode_chunk

    kept = await upload(http, "kept.bin", os.urandom(MIB // 4))
    orphan = encode_chunk(os.urandom(1000))
    await node.workers[0].put_chunk(orphan.chunk_id, orphan.frame)
    assert await node.master.sweeper.run_once() == 1
    assert stored_frame(node, node.workers[0].worker_id, orphan.chunk_id) is None
    assert await node.master.sweeper.run_once() == 0
    assert len(await download(http, kept["file_id"])) == MIB // 4


async def test_worker_back_from_the_dead_gets_the_copies_it_missed(http, node):
    import time as _time

    heartbeat = node.heartbeats[2]  # w3's
    await heartbeat.stop()
    node.master.registry._workers["w3"].last_heartbeat = _time.monotonic() - 3600
    assert node.master.registry.liveness("w3") == "dead"
    body = await upload(http, "while-away.bin", os.urandom(2 * MIB))
    assert body["replicas_acked"] == 2
    for chunk in await _chunk_list(http, body["file_id"]):
        assert "w3" not in chunk["replicas"]
    heartbeat.start()  # w3 reports in again
    await heartbeat.run_once()
    assert node.master.registry.liveness("w3") == "alive"
    await drain_replication(node)
    await node.master.replicator.run_once()
    await drain_replication(node)
    for chunk in await _chunk_list(http, body["file_id"]):
        assert sorted(chunk["replicas"]) == ["w1", "w2", "w3"]
