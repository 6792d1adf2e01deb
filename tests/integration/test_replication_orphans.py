"""Copies owed to chunks of uploads that never committed do not block the
replication queue.

A strong write queues a durable intent for each copy a target did not take,
before the version commits; the copies that did land are recorded only at
commit. When the master dies between the two, those intents point at a chunk
no version uses, with no recorded source to copy from: they used to retry
every minute until the collector's grace period (an hour) ran out. Now the
replicator recognises them (no version references the chunk and no upload
has touched it for ``REPLICATION_ORPHAN_AFTER``) and drops them, counted, so
the queue drains; copies still owed to a committed chunk are never dropped.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import time
from pathlib import Path

import aiohttp
from prometheus_client import REGISTRY
from sqlalchemy import update

from echofs.core.consistency import Mode
from echofs.metadata.models import ChunkRow
from echofs.node import EmbeddedNode
from echofs.testing.fakes import FakeWorkerClient
from echofs.testing.http import download
from echofs.testing.node import drain_replication, running_node

CHUNK = 64 * 1024
# How long ago the crashed upload last touched its chunks: past the default
# orphan age (5 min), well within the collector's grace period (1 h), so the
# collector is not what empties the queue here.
CRASHED_AGO = 900.0


def _dropped(reason: str) -> float:
    return REGISTRY.get_sample_value("echofs_replication_tasks_dropped_total",
                                     {"reason": reason}) or 0.0


def _no_source() -> float:
    return REGISTRY.get_sample_value("echofs_replication_no_source_total") or 0.0


async def _eventually(check, within: float = 5.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while not await check():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


async def _backlog(node: EmbeddedNode) -> int:
    return (await node.repo.replication_backlog())[0]


async def _age_chunks(node: EmbeddedNode, seconds: float) -> None:
    """As if the last touch of every chunk was ``seconds`` earlier."""
    async with node.repo.writing_unmemoized() as session:
        await session.execute(update(ChunkRow).values(touched_at=ChunkRow.touched_at - seconds))


async def _abandon_strong_upload(node: EmbeddedNode, chunks: int) -> str:
    """Store ``chunks`` chunks on two of three targets with the third
    refusing, so each gets a durable intent for its missing copy; then stop
    as a crashed master would, before the commit. Returns the victim."""
    await node.master.replicator.stop()  # the queue is looked at, not drained
    registry = node.master.registry
    victim = sorted(w.worker_id for w in node.workers)[-1]
    healthy = registry.client(victim)
    assert healthy is not None
    refusing = FakeWorkerClient.wrapping(healthy)
    refusing.put.fail(ConnectionResetError("refused"))
    registry.register(refusing)
    upload = node.master.uploads.begin(Mode.STRONG)
    await upload.write(os.urandom(chunks * CHUNK))
    await _eventually(lambda: _has_backlog(node, chunks))
    await upload.abort()  # nothing commits, nothing touches the chunks again
    registry.register(healthy)
    return victim


async def _has_no_backlog(node: EmbeddedNode) -> bool:
    return await _backlog(node) == 0


async def _has_backlog(node: EmbeddedNode, depth: int) -> bool:
    return await _backlog(node) >= depth


async def test_copies_owed_by_an_upload_that_never_committed_drain_after_restart(
        tmp_path: Path) -> None:
    data_dir = tmp_path / "d"
    async with running_node(data_dir, chunk_size=CHUNK) as node:
        await _abandon_strong_upload(node, chunks=3)
        assert await _backlog(node) == 3
    # Aged while no node runs: after the restart, the replicator's first pass
    # may come before the test could age them; before the stop, a last touch
    # of the stopping node may undo it.
    with sqlite3.connect(data_dir / "metadata.db") as db:
        db.execute("UPDATE chunks SET touched_at = touched_at - ?", (CRASHED_AGO,))
    orphaned, no_source = _dropped("orphaned"), _no_source()

    # The master comes back some minutes later; its replicator meets the intents.
    async with running_node(data_dir, chunk_size=CHUNK) as node:
        # The node's own replicator drains it (a second pass run from here
        # beside it would meet tasks the first had just dropped).
        await _eventually(lambda: _has_no_backlog(node))
        assert _dropped("orphaned") - orphaned == 3
        # They were recognised before a hopeless copy attempt was made.
        assert _no_source() == no_source
        # The chunks are garbage as before: the collector takes them.
        report = await node.master.collector.run_once(grace=0.0)
        assert report.removed == 3


async def test_copies_owed_by_an_upload_still_in_flight_are_kept(tmp_path: Path) -> None:
    async with running_node(tmp_path / "d", chunk_size=CHUNK) as node:
        await _abandon_strong_upload(node, chunks=2)
        orphaned, no_source = _dropped("orphaned"), _no_source()
        # Touched just now: for all the replicator knows its upload may still
        # commit. No source is recorded yet, so each attempt fails and waits.
        await node.master.replicator.run_once()
        assert await _backlog(node) == 2
        assert _dropped("orphaned") == orphaned
        assert _no_source() - no_source == 2


async def test_copies_owed_to_a_committed_chunk_are_never_dropped(tmp_path: Path) -> None:
    async with running_node(tmp_path / "d", chunk_size=CHUNK) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        await node.master.replicator.stop()
        registry = node.master.registry
        victim = sorted(w.worker_id for w in node.workers)[-1]
        healthy = registry.client(victim)
        assert healthy is not None
        refusing = FakeWorkerClient.wrapping(healthy)
        refusing.put.fail(ConnectionResetError("refused"))
        registry.register(refusing)
        data = os.urandom(2 * CHUNK)
        async with http.put("/api/v1/files/content/kept.bin", data=data,
                            headers={"X-EchoFS-Consistency": "strong"}) as resp:
            body = await resp.json()
            assert resp.status == 201, body
        assert await _backlog(node) == 2
        registry.register(healthy)
        # Committed long ago: old touches, but a version uses the chunks.
        await _age_chunks(node, CRASHED_AGO)
        orphaned = _dropped("orphaned")
        await drain_replication(node, within=5.0)
        assert _dropped("orphaned") == orphaned
        async with http.get(f"/api/v1/files/{body['file_id']}") as resp:
            for chunk in (await resp.json())["chunk_list"]:
                assert victim in chunk["replicas"]
        assert await download(http, body["file_id"]) == data
