"""Puts still running after their chunk's quorum (``Stragglers``)."""

from __future__ import annotations

import asyncio

from echofs.core.vocabulary import ReplicationReason
from echofs.master.quorum import Puts, Stragglers
from echofs.testing.fakes import FakeRepository, FakeWorkerClient

FRAME = b"frame"
OWED = {"w3": ReplicationReason.UNDER_REPLICATED}


async def _settle() -> None:
    for _ in range(10):
        await asyncio.sleep(0)


def _put(worker: FakeWorkerClient, chunk_id: str) -> Puts:
    return {asyncio.create_task(worker.put_chunk(chunk_id, FRAME)): worker.worker_id}


async def _acknowledged_without_w3() -> FakeRepository:
    """Chunk c1, acknowledged at quorum on w1 and w2: its copy on w3 is owed."""
    repo = FakeRepository()
    repo.add_chunk("c1", ["w1", "w2"])
    await repo.enqueue_replication("c1", "w3", ReplicationReason.UNDER_REPLICATED)
    return repo


async def test_a_copy_that_lands_is_recorded():
    repo = await _acknowledged_without_w3()
    stragglers = Stragglers(repo, limit=4)
    w3 = FakeWorkerClient("w3")
    w3.put.hang()
    stragglers.adopt("c1", _put(w3, "c1"))
    await _settle()
    assert (stragglers.running, stragglers.landed) == (1, 0)
    assert repo.copies["c1"] == ["w1", "w2"]

    w3.put.release()
    await _settle()
    assert (stragglers.running, stragglers.landed, stragglers.cancelled) == (0, 1, 0)
    assert repo.copies["c1"] == ["w1", "w2", "w3"]
    # The intent stays for the replicator, whose copy is idempotent.
    assert repo.targets("c1") == OWED


async def test_beyond_the_limit_puts_are_cancelled():
    stragglers = Stragglers(FakeRepository(), limit=2)
    w3, w4 = FakeWorkerClient("w3"), FakeWorkerClient("w4")
    w3.put.hang()
    w4.put.hang()
    first = _put(w3, "c1") | _put(w4, "c1")
    second = _put(w3, "c2")
    stragglers.adopt("c1", first)
    stragglers.adopt("c2", second)
    await _settle()
    assert (stragglers.running, stragglers.cancelled) == (2, 1)
    (cancelled,) = second
    assert cancelled.cancelled()
    assert not any(task.done() for task in first)
    w3.put.release()
    w4.put.release()
    await _settle()
    assert (stragglers.running, stragglers.landed) == (0, 2)


async def test_a_slot_frees_when_a_straggler_ends():
    stragglers = Stragglers(FakeRepository(), limit=1)
    w3 = FakeWorkerClient("w3")
    stragglers.adopt("c1", _put(w3, "c1"))
    await _settle()
    w3.put.hang()
    stragglers.adopt("c2", _put(w3, "c2"))
    await _settle()
    assert (stragglers.running, stragglers.cancelled) == (1, 0)
    w3.put.release()
    await _settle()
    assert (stragglers.running, stragglers.landed) == (0, 2)


async def test_a_failed_put_leaves_the_intent():
    repo = await _acknowledged_without_w3()
    stragglers = Stragglers(repo, limit=4)
    w3 = FakeWorkerClient("w3")
    w3.put.fail()
    stragglers.adopt("c1", _put(w3, "c1"))
    assert stragglers.running == 1
    await _settle()
    assert (stragglers.running, stragglers.landed) == (0, 0)
    assert repo.copies["c1"] == ["w1", "w2"]
    assert repo.targets("c1") == OWED


async def test_a_copy_that_cannot_be_recorded_leaves_the_intent():
    repo = await _acknowledged_without_w3()
    repo.unavailable = ConnectionError("database away")
    stragglers = Stragglers(repo, limit=4)
    stragglers.adopt("c1", _put(FakeWorkerClient("w3"), "c1"))
    await _settle()
    assert (stragglers.running, stragglers.landed) == (0, 0)
    repo.unavailable = None
    assert repo.copies["c1"] == ["w1", "w2"]
    assert repo.targets("c1") == OWED
