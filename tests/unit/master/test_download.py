"""The download pipeline: replica fallback in ``ChunkReader`` and range
slicing and read-ahead in ``stream_version``, over fake workers."""

from __future__ import annotations

import asyncio
import os

import pytest

from echofs.core.chunk_codec import encode_chunk
from echofs.core.errors import ChunkUnavailable
from echofs.core.manifest import ChunkRef, VersionRecord
from echofs.core.ranges import ByteRange
from echofs.core.vocabulary import Liveness, ReplicationReason
from echofs.master.chunk_io import ChunkIO
from echofs.master.download import ChunkReader, stream_version
from echofs.master.read_striping import stripe_base
from echofs.testing.fakes import FakeRepository, FakeWorkerClient, PinnedRegistry


class Cluster:
    """Fake workers behind the real registry and chunk I/O, and a reader."""

    def __init__(self, *worker_ids: str) -> None:
        self.workers = {w: FakeWorkerClient(w) for w in worker_ids}
        self.registry = PinnedRegistry(self.workers.values())
        self.repo = FakeRepository()
        # Timeouts no test reaches: a hung fake call stays hung.
        chunk_io = ChunkIO(self.registry, write_timeout=60.0, read_timeout=60.0)
        self.reader = ChunkReader(self.repo, self.registry, chunk_io)

    def store(self, raw: bytes, seq: int, offset: int, *on: str) -> ChunkRef:
        encoded = encode_chunk(raw)
        for worker_id in on:
            self.workers[worker_id].frames[encoded.chunk_id] = encoded.frame
        self.repo.add_chunk(encoded.chunk_id, on)
        return ChunkRef(seq, encoded.chunk_id, offset, len(raw), encoded.compressed, on)


# -- replica fallback -----------------------------------------------------------------

# Both sides of the size above which frames are verified off the event loop.
SIZES = [1000, 100 * 1024]


@pytest.mark.parametrize("size", SIZES)
async def test_a_healthy_first_replica_is_all_it_takes(size):
    cluster = Cluster("w1", "w2", "w3")
    raw = os.urandom(size)
    ref = cluster.store(raw, 0, 0, "w1", "w2", "w3")
    assert await cluster.reader.read(ref) == raw
    assert [cluster.workers[w].get.calls for w in ("w1", "w2", "w3")] == [1, 0, 0]
    assert cluster.repo.queue == {}


async def test_an_unreachable_replica_falls_back_without_a_repair():
    cluster = Cluster("w1", "w2", "w3")
    raw = os.urandom(1000)
    ref = cluster.store(raw, 0, 0, "w1", "w2", "w3")
    cluster.workers["w1"].get.fail()
    assert await cluster.reader.read(ref) == raw
    assert cluster.workers["w2"].get.calls == 1
    # Unreachable is not a bad copy: nothing to repair.
    assert (cluster.repo.queue, cluster.reader.repairs_queued) == ({}, 0)


@pytest.mark.parametrize("size", SIZES)
async def test_a_corrupt_replica_falls_back_and_is_repaired(size):
    cluster = Cluster("w1", "w2", "w3")
    raw = os.urandom(size)
    ref = cluster.store(raw, 0, 0, "w1", "w2", "w3")
    cluster.workers["w1"].get.corrupt()
    assert await cluster.reader.read(ref) == raw
    assert cluster.repo.targets(ref.chunk_id) == {"w1": ReplicationReason.READ_REPAIR_CORRUPT}
    assert cluster.reader.repairs_queued == 1


async def test_a_missing_replica_falls_back_and_is_repaired():
    cluster = Cluster("w1", "w2", "w3")
    raw = os.urandom(1000)
    ref = cluster.store(raw, 0, 0, "w2", "w3")
    ref = ChunkRef(ref.seq, ref.chunk_id, ref.offset, ref.size, ref.compressed,
                   ("w1", "w2", "w3"))  # w1 is recorded but lost its copy
    assert await cluster.reader.read(ref) == raw
    assert cluster.repo.targets(ref.chunk_id) == {"w1": ReplicationReason.READ_REPAIR_MISSING}


async def test_no_good_replica_fails_and_never_returns_wrong_bytes():
    cluster = Cluster("w1", "w2", "w3")
    ref = cluster.store(os.urandom(1000), 3, 0, "w1", "w2", "w3")
    cluster.workers["w1"].get.corrupt()
    del cluster.workers["w2"].frames[ref.chunk_id]
    cluster.workers["w3"].get.fail()
    with pytest.raises(ChunkUnavailable) as failed:
        await cluster.reader.read(ref)
    assert "chunk 3" in str(failed.value)
    assert "w1: corrupt" in str(failed.value) and "w2: missing" in str(failed.value)
    assert cluster.repo.targets(ref.chunk_id) == {
        "w1": ReplicationReason.READ_REPAIR_CORRUPT, "w2": ReplicationReason.READ_REPAIR_MISSING}


async def test_a_chunk_without_replicas_is_unavailable():
    cluster = Cluster("w1")
    with pytest.raises(ChunkUnavailable, match="no replica recorded"):
        await cluster.reader.read(ChunkRef(0, "0" * 64, 0, 10))


async def test_a_repair_that_cannot_be_queued_does_not_fail_the_read():
    cluster = Cluster("w1", "w2")
    raw = os.urandom(1000)
    ref = cluster.store(raw, 0, 0, "w1", "w2")
    cluster.workers["w1"].get.corrupt()
    cluster.repo.unavailable = ConnectionError("database away")
    assert await cluster.reader.read(ref) == raw
    assert cluster.reader.repairs_queued == 0


# -- ranges and read-ahead --------------------------------------------------------------

SIZES_OF_CHUNKS = (10, 10, 10, 5)
DATA = bytes(range(sum(SIZES_OF_CHUNKS)))


def _version(cluster: Cluster) -> VersionRecord:
    """Chunks of DATA, each on a worker of its own (w0..w3)."""
    refs, offset = [], 0
    for seq, size in enumerate(SIZES_OF_CHUNKS):
        refs.append(cluster.store(DATA[offset:offset + size], seq, offset, f"w{seq}"))
        offset += size
    return VersionRecord("f", 1, len(DATA), "0" * 64, len(refs), "strong", 1, 0.0, tuple(refs))


async def _collect(cluster: Cluster, byte_range: ByteRange | None, read_ahead: int) -> bytes:
    pieces = [piece async for piece in
              stream_version(cluster.reader, _version(cluster), byte_range, read_ahead)]
    return b"".join(pieces)


@pytest.mark.parametrize("read_ahead", [0, 1, 3, 10])
@pytest.mark.parametrize(
    ("start", "end", "chunks_read"),
    [
        (0, 34, 4),  # everything
        (0, 0, 1),  # first byte
        (34, 34, 1),  # last byte
        (3, 7, 1),  # inside one chunk
        (10, 19, 1),  # exactly one chunk
        (9, 10, 2),  # the two bytes either side of a boundary
        (8, 12, 2),  # across a boundary
        (5, 31, 4),  # across several
        (20, 34, 2),  # the tail
    ],
)
async def test_a_range_yields_exactly_its_bytes(start, end, chunks_read, read_ahead):
    cluster = Cluster("w0", "w1", "w2", "w3")
    assert await _collect(cluster, ByteRange(start, end), read_ahead) == DATA[start:end + 1]
    assert sum(w.get.calls for w in cluster.workers.values()) == chunks_read


async def test_no_range_yields_the_whole_version():
    cluster = Cluster("w0", "w1", "w2", "w3")
    assert await _collect(cluster, None, 2) == DATA


async def test_read_ahead_overlaps_reads_and_keeps_the_order():
    cluster = Cluster("w0", "w1", "w2", "w3")
    cluster.workers["w0"].get.hang()
    pieces: list[bytes] = []

    async def consume() -> None:
        async for piece in stream_version(cluster.reader, _version(cluster), None, 3):
            pieces.append(piece)

    consuming = asyncio.create_task(consume())
    for _ in range(10):
        await asyncio.sleep(0)
    # Three reads in flight, the first one stuck: nothing sent out of order,
    # and no fourth read until a slot frees.
    assert [cluster.workers[f"w{i}"].get.calls for i in range(4)] == [1, 1, 1, 0]
    assert pieces == []
    cluster.workers["w0"].get.release()
    await consuming
    assert pieces == [DATA[0:10], DATA[10:20], DATA[20:30], DATA[30:35]]


async def test_a_stream_abandoned_midway_cancels_its_reads_ahead():
    cluster = Cluster("w0", "w1", "w2", "w3")
    cluster.workers["w1"].get.hang()
    cluster.workers["w2"].get.hang()
    stream = stream_version(cluster.reader, _version(cluster), None, 3)
    assert await anext(stream) == DATA[0:10]
    async with asyncio.timeout(1):  # far below the read timeout
        await stream.aclose()
    assert (cluster.workers["w1"].get.waiting, cluster.workers["w2"].get.waiting) == (0, 0)


# -- hedged reads -------------------------------------------------------------------


def _hedges(outcome: str) -> float:
    from prometheus_client import REGISTRY

    return REGISTRY.get_sample_value("echofs_read_hedges_total", {"outcome": outcome}) or 0.0


async def test_a_hung_replica_is_hedged_after_its_p99_and_the_hedge_wins():
    cluster = Cluster("w1", "w2", "w3")
    latencies = cluster.reader.chunk_io.read_latencies
    raw = os.urandom(1000)
    ref = cluster.store(raw, 0, 0, "w1", "w2", "w3")
    for _ in range(10):  # w1 answers in ~5 ms: its p99 is the clamp's floor
        latencies.observe("w1", 0.005)
    started, won = _hedges("started"), _hedges("won")
    cluster.workers["w1"].get.hang()
    loop = asyncio.get_running_loop()
    begun = loop.time()
    assert await cluster.reader.read(ref) == raw
    assert loop.time() - begun < 0.5
    assert (_hedges("started") - started, _hedges("won") - won) == (1, 1)
    # The first good answer won: the read still hung on w1 was cancelled.
    assert cluster.workers["w1"].get.waiting == 0
    assert [cluster.workers[w].get.calls for w in ("w1", "w2", "w3")] == [1, 1, 0]
    # w1 was hedged around: the next read asks the others first, at once.
    assert await cluster.reader.read(cluster.store(os.urandom(500), 1, 0, "w1", "w2")) \
        and cluster.workers["w1"].get.calls == 1
    assert cluster.repo.queue == {}


async def test_a_replica_answering_within_its_p99_is_not_hedged():
    cluster = Cluster("w1", "w2")
    latencies = cluster.reader.chunk_io.read_latencies
    raw = os.urandom(1000)
    ref = cluster.store(raw, 0, 0, "w1", "w2")
    for _ in range(10):
        latencies.observe("w1", 0.5)  # slow but steady: its p99 is 0.5 s
    cluster.workers["w1"].get.hang()
    started = _hedges("started")
    read = asyncio.create_task(cluster.reader.read(ref))
    await asyncio.sleep(0.1)
    cluster.workers["w1"].get.release()
    assert await read == raw
    assert _hedges("started") == started
    assert [cluster.workers[w].get.calls for w in ("w1", "w2")] == [1, 0]


async def test_a_read_queued_behind_its_workers_other_answers_is_not_hedged():
    # Many large reads at once: each outlives a p99 taken a moment earlier,
    # but the worker is answering the others meanwhile, so it is busy, not
    # stalled. The read waits on (up to the hedging ceiling) instead of being
    # asked twice.
    cluster = Cluster("w1", "w2")
    latencies = cluster.reader.chunk_io.read_latencies
    raw = os.urandom(1000)
    ref = cluster.store(raw, 0, 0, "w1", "w2")
    for _ in range(10):
        latencies.observe("w1", 0.005)  # p99 at the 20 ms floor
    cluster.workers["w1"].get.hang()
    started = _hedges("started")
    read = asyncio.create_task(cluster.reader.read(ref))
    for _ in range(8):  # 80 ms of w1 answering other reads
        await asyncio.sleep(0.01)
        latencies.observe("w1", 0.03)
    cluster.workers["w1"].get.release()
    assert await read == raw
    assert _hedges("started") == started
    assert [cluster.workers[w].get.calls for w in ("w1", "w2")] == [1, 0]


async def test_a_hedge_that_fails_leaves_the_first_read_to_finish():
    cluster = Cluster("w1", "w2")
    latencies = cluster.reader.chunk_io.read_latencies
    raw = os.urandom(1000)
    ref = cluster.store(raw, 0, 0, "w1", "w2")
    for _ in range(10):
        latencies.observe("w1", 0.001)
    cluster.workers["w1"].get.hang()
    cluster.workers["w2"].get.fail()
    read = asyncio.create_task(cluster.reader.read(ref))
    await asyncio.sleep(0.2)
    assert not read.done() and cluster.workers["w2"].get.calls == 1
    cluster.workers["w1"].get.release()
    assert await read == raw


# -- striping ---------------------------------------------------------------------------


def _replicated_version(cluster: Cluster, chunks: int, size: int) -> tuple[VersionRecord, bytes]:
    """A version of ``chunks`` chunks, each on every worker of ``cluster``."""
    data = os.urandom(chunks * size)
    workers = tuple(cluster.workers)
    refs = [cluster.store(data[i * size:(i + 1) * size], i, i * size, *workers)
            for i in range(chunks)]
    return VersionRecord("f", 1, len(data), "0" * 64, chunks, "strong", 1, 0.0,
                         tuple(refs)), data


async def _download(cluster: Cluster, version: VersionRecord,
                    byte_range: ByteRange | None = None) -> bytes:
    return b"".join([piece async for piece in
                     stream_version(cluster.reader, version, byte_range, 4)])


async def test_a_large_file_is_read_from_all_its_replicas_at_once():
    cluster = Cluster("w1", "w2", "w3")
    version, data = _replicated_version(cluster, 9, 100 * 1024)
    assert await _download(cluster, version) == data
    # Consecutive chunks from consecutive replicas: each asked for a third.
    assert [cluster.workers[w].get.calls for w in ("w1", "w2", "w3")] == [3, 3, 3]


async def test_striping_skips_a_suspect_replica_and_still_falls_back_to_it():
    cluster = Cluster("w1", "w2", "w3")
    version, data = _replicated_version(cluster, 6, 1000)
    cluster.registry.pin("w2", Liveness.SUSPECT)
    assert await _download(cluster, version) == data
    assert [cluster.workers[w].get.calls for w in ("w1", "w2", "w3")] == [3, 0, 3]
    # The healthy ones fail: the suspect copy is still read rather than none.
    cluster.workers["w1"].get.fail()
    cluster.workers["w3"].get.fail()
    assert await _download(cluster, version) == data
    assert cluster.workers["w2"].get.calls == 6


async def test_a_corrupt_replica_in_the_stripe_is_never_served_and_is_repaired():
    cluster = Cluster("w1", "w2", "w3")
    version, data = _replicated_version(cluster, 6, 100 * 1024)
    cluster.workers["w2"].get.corrupt()
    assert await _download(cluster, version) == data
    # The chunks w2 was asked for first came from the next replica instead,
    # and only w2's copies of them are queued for repair.
    firsts = [r for r in version.chunks
              if cluster.reader.read_order(r, stripe_base("f", 1) + r.seq)[0] == "w2"]
    assert len(firsts) == 2 and cluster.workers["w2"].get.calls == 2
    for ref in version.chunks:
        expected = {"w2": ReplicationReason.READ_REPAIR_CORRUPT} if ref in firsts else {}
        assert cluster.repo.targets(ref.chunk_id) == expected


@pytest.mark.parametrize(("start", "end"), [(0, 250_000), (99_999, 100_000), (150_000, 599_999)])
async def test_ranges_over_striped_views_are_exact(start, end):
    cluster = Cluster("w1", "w2", "w3")
    version, data = _replicated_version(cluster, 6, 100 * 1024)
    assert await _download(cluster, version, ByteRange(start, end)) == data[start:end + 1]


async def test_an_uncompressed_chunk_is_handed_on_without_a_copy():
    cluster = Cluster("w1")
    raw = os.urandom(200 * 1024)
    ref = cluster.store(raw, 0, 0, "w1")
    got = await cluster.reader.read(ref)
    # A view into the frame the worker sent, after verification.
    assert isinstance(got, memoryview) and got == raw


async def test_a_replica_far_slower_than_the_others_is_left_out_of_the_stripe():
    cluster = Cluster("w1", "w2", "w3")
    latencies = cluster.reader.chunk_io.read_latencies
    for _ in range(10):  # w3 is in another zone: 200 ms a read, the others 2
        latencies.observe("w1", 0.002)
        latencies.observe("w2", 0.003)
        latencies.observe("w3", 0.2)
    version, data = _replicated_version(cluster, 6, 1000)
    assert await _download(cluster, version) == data
    assert [cluster.workers[w].get.calls for w in ("w1", "w2", "w3")] == [3, 3, 0]
    # Still a replica: asked when the near ones cannot answer.
    ref = version.chunks[0]
    assert cluster.reader.read_order(ref, 0)[-1] == "w3"
    # Replicas a little apart (noise, load) all stay in.
    for _ in range(64):
        latencies.observe("w3", 0.008)
    calls = cluster.workers["w3"].get.calls
    assert await _download(cluster, version) == data
    assert cluster.workers["w3"].get.calls - calls == 2


async def test_a_hung_replica_in_the_stripe_is_hedged_and_then_left_out():
    cluster = Cluster("w1", "w2", "w3")
    latencies = cluster.reader.chunk_io.read_latencies
    for _ in range(10):
        for worker_id in ("w1", "w2", "w3"):
            latencies.observe(worker_id, 0.005)
    version, data = _replicated_version(cluster, 12, 1000)
    cluster.workers["w2"].get.hang()
    started = _hedges("started")
    loop = asyncio.get_running_loop()
    begun = loop.time()
    assert await _download(cluster, version) == data
    assert loop.time() - begun < 1.0  # hedging delays, not the read timeout
    assert _hedges("started") > started
    # Only the reads that started at w2 before its first hedge went to it:
    # hedged around, it is lagging and out of the stripe.
    assert 1 <= cluster.workers["w2"].get.calls <= 2
    assert cluster.workers["w2"].get.waiting == 0  # the hung reads were cancelled
    cluster.workers["w2"].get.release()
