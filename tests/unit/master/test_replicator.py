"""The replicator over fake workers, a fake queue and a fake clock: copies
come from a verified source, failures back off up to a cap, and a copy aimed
at a dead worker is re-aimed at the chunk's new home."""

from __future__ import annotations

import asyncio
import os
import time

from echofs.core.chunk_codec import encode_chunk
from echofs.core.vocabulary import ChunkState, Liveness, ReplicationReason
from echofs.master.chunk_io import ChunkIO
from echofs.master.replicator import Replicator
from echofs.testing.fakes import FakeClock, FakeRepository, FakeWorkerClient, PinnedRegistry


class Cluster:
    def __init__(self, *worker_ids: str, replication_factor: int) -> None:
        # The queue's clock starts at the wall clock's time: the replicator
        # measures convergence against the wall clock.
        self.clock = FakeClock(time.time())
        self.workers = {w: FakeWorkerClient(w) for w in worker_ids}
        self.registry = PinnedRegistry(self.workers.values())
        self.repo = FakeRepository(self.clock)
        chunk_io = ChunkIO(self.registry, write_timeout=5.0, read_timeout=5.0)
        self.replicator = Replicator(self.repo, self.registry, chunk_io,
                                     replication_factor=replication_factor, interval=60.0)

    def store(self, *on: str) -> tuple[str, bytes]:
        encoded = encode_chunk(os.urandom(1000))
        for worker_id in on:
            self.workers[worker_id].frames[encoded.chunk_id] = encoded.frame
        self.repo.add_chunk(encoded.chunk_id, on)
        return encoded.chunk_id, encoded.frame


async def test_a_copy_comes_from_a_verified_source():
    cluster = Cluster("w1", "w2", "w3", replication_factor=3)
    chunk_id, frame = cluster.store("w1", "w2")
    cluster.workers["w1"].get.corrupt()
    await cluster.repo.enqueue_replication(chunk_id, "w3", ReplicationReason.SCRUB_MISSING)
    assert await cluster.replicator.run_once() == 1
    assert cluster.workers["w3"].frames[chunk_id] == frame  # w2's copy, not w1's
    assert cluster.repo.copies[chunk_id] == ["w1", "w2", "w3"]
    assert cluster.repo.queue == {}


async def test_retry_delays_grow_and_cap_at_the_maximum():
    cluster = Cluster("w1", "w2", replication_factor=2)
    chunk_id, _ = cluster.store("w1")
    cluster.workers["w1"].get.fail()  # the only source is unreachable
    await cluster.repo.enqueue_replication(chunk_id, "w2", ReplicationReason.UNDER_REPLICATED)

    delays = []
    for _ in range(9):
        assert await cluster.replicator.run_once() == 0
        (_, delay), = cluster.repo.retried[len(delays):]
        delays.append(delay)
        # Not due again before its delay...
        cluster.clock.advance(delay * 0.99)
        assert await cluster.repo.due_replications() == []
        cluster.clock.advance(delay * 0.02)
    assert delays == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert [task.attempts for task, _ in cluster.repo.retried] == list(range(9))

    cluster.workers["w1"].get.succeed()  # ...and once the source is back, done
    assert await cluster.replicator.run_once() == 1
    assert cluster.repo.copies[chunk_id] == ["w1", "w2"]


async def test_a_copy_for_a_target_not_alive_backs_off():
    cluster = Cluster("w1", "w2", replication_factor=2)
    chunk_id, _ = cluster.store("w1")
    cluster.registry.pin("w2", Liveness.SUSPECT)
    await cluster.repo.enqueue_replication(chunk_id, "w2", ReplicationReason.UNDER_REPLICATED)
    assert await cluster.replicator.run_once() == 0
    assert [delay for _, delay in cluster.repo.retried] == [1]
    assert cluster.workers["w2"].put.calls == 0


async def test_a_copy_aimed_at_a_dead_worker_is_re_aimed():
    # Two placeable workers for two copies: the new home is w3 whatever the
    # placement strategy.
    cluster = Cluster("w1", "w2", "w3", replication_factor=2)
    chunk_id, frame = cluster.store("w1")
    await cluster.repo.enqueue_replication(chunk_id, "w2", ReplicationReason.UNDER_REPLICATED)
    cluster.registry.pin("w2", Liveness.DEAD)
    await cluster.replicator.run_once()
    assert cluster.workers["w2"].put.calls == 0
    assert cluster.repo.retried == []  # dropped, not retried against the dead
    assert cluster.workers["w3"].frames[chunk_id] == frame
    assert cluster.repo.copies[chunk_id] == ["w1", "w3"]
    assert cluster.repo.queue == {}


async def test_a_copy_aimed_at_a_dead_worker_is_dropped_when_its_homes_hold_it():
    cluster = Cluster("w1", "w2", "w3", replication_factor=2)
    chunk_id, _ = cluster.store("w1", "w3")
    await cluster.repo.enqueue_replication(chunk_id, "w2", ReplicationReason.SCRUB_CORRUPT)
    cluster.registry.pin("w2", Liveness.DEAD)
    await cluster.replicator.run_once()
    assert (cluster.repo.queue, cluster.repo.retried) == ({}, [])
    assert sum(w.put.calls for w in cluster.workers.values()) == 0


async def test_a_dead_workers_chunks_get_new_homes():
    cluster = Cluster("w1", "w2", "w3", replication_factor=2)
    chunk_id, frame = cluster.store("w1", "w2")
    cluster.registry.pin("w2", Liveness.DEAD)
    assert await cluster.replicator.run_once() == 1
    assert cluster.workers["w3"].frames[chunk_id] == frame
    assert cluster.repo.copies[chunk_id] == ["w1", "w2", "w3"]


async def test_a_task_for_a_collected_chunk_is_dropped():
    cluster = Cluster("w1", "w2", replication_factor=2)
    chunk_id, _ = cluster.store("w1")
    await cluster.repo.enqueue_replication(chunk_id, "w2", ReplicationReason.UNDER_REPLICATED)
    cluster.repo.chunks[chunk_id] = ChunkState.DELETING
    await cluster.replicator.run_once()
    assert cluster.repo.queue == {}
    assert cluster.workers["w2"].put.calls == 0


async def test_a_worker_alive_again_without_a_heartbeat_saying_so_gets_its_copies_at_once():
    """A worker suspect for failed calls turns alive when they age out, between
    heartbeats: nothing calls ``worker_up``. Its copies, backed off while it
    was away, must not wait out the backoff (up to a minute)."""
    cluster = Cluster("w1", "w2", replication_factor=2)
    chunk_id, _ = cluster.store("w1")
    cluster.registry.pin("w2", Liveness.SUSPECT)
    await cluster.repo.enqueue_replication(chunk_id, "w2", ReplicationReason.UNDER_REPLICATED)
    for _ in range(5):
        assert await cluster.replicator.run_once() == 0
        cluster.clock.advance(cluster.repo.retried[-1][1])
    assert await cluster.replicator.run_once() == 0
    assert cluster.repo.retried[-1][1] == 32  # the next try is far off
    assert await cluster.repo.due_replications() == []
    cluster.registry.pin("w2", Liveness.ALIVE)
    assert await cluster.replicator.run_once() == 1
    assert cluster.repo.copies[chunk_id] == ["w1", "w2"]


async def test_worker_up_wakes_the_replicator_even_with_nothing_queued_for_it():
    cluster = Cluster("w1", "w2", replication_factor=2)
    await cluster.replicator.worker_up("w2")
    assert cluster.replicator._wake.is_set()


async def test_a_copy_hung_on_its_target_does_not_hold_back_the_pass():
    """A put to a worker cut off mid-call hangs until the write timeout; the
    other due copies must be done without waiting for it, and the hung one
    is not started twice."""
    # RF 1: the chunks lack no copy, so only the two copies queued here run.
    cluster = Cluster("w1", "w2", "w3", replication_factor=1)
    cluster.replicator.pass_wait = 0.05
    hung_chunk, _ = cluster.store("w1")
    other_chunk, _ = cluster.store("w1")
    cluster.workers["w2"].put.hang()
    await cluster.repo.enqueue_replication(hung_chunk, "w2", ReplicationReason.UNDER_REPLICATED)
    await cluster.repo.enqueue_replication(other_chunk, "w3", ReplicationReason.UNDER_REPLICATED)
    assert await asyncio.wait_for(cluster.replicator.run_once(), timeout=2) == 1
    assert cluster.repo.copies[other_chunk] == ["w1", "w3"]
    assert cluster.repo.copies[hung_chunk] == ["w1"]
    await asyncio.wait_for(cluster.replicator.run_once(), timeout=2)
    assert cluster.workers["w2"].put.calls == 1  # still running, not started again
    cluster.workers["w2"].put.release()
    await asyncio.sleep(0.01)
    assert cluster.repo.copies[hung_chunk] == ["w1", "w2"]
    assert cluster.replicator.completed == 2  # counted when it lands
    await cluster.replicator.stop()


async def test_a_copy_refused_for_a_target_that_came_back_meanwhile_is_not_backed_off():
    cluster = Cluster("w1", "w2", replication_factor=2)
    chunk_id, _ = cluster.store("w1")
    await cluster.repo.enqueue_replication(chunk_id, "w2", ReplicationReason.UNDER_REPLICATED)
    (task,) = await cluster.repo.due_replications()
    cluster.registry.pin("w2", Liveness.SUSPECT)
    original = cluster.replicator._replicate

    async def refused_then_back(t):
        try:
            await original(t)
        finally:
            cluster.registry.pin("w2", Liveness.ALIVE)  # the heartbeat lands meanwhile

    cluster.replicator._replicate = refused_then_back  # type: ignore[method-assign]
    assert await cluster.replicator._attempt(task) is False
    assert [delay for _, delay in cluster.repo.retried] == [0.0]
