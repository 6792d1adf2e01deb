"""The read-ahead window: in order, bounded by chunks and bytes, pulled by
the consumer (a slow one stops further reads), cancelled when abandoned."""

from __future__ import annotations

import asyncio
import random

import pytest

from echofs.core.manifest import ChunkRef
from echofs.master.read_ahead import ReadAheadWindow, read_ahead

MIB = 1024 * 1024


def _refs(*sizes: int) -> list[ChunkRef]:
    refs, offset = [], 0
    for seq, size in enumerate(sizes):
        refs.append(ChunkRef(seq, f"{seq:064x}", offset, size))
        offset += size
    return refs


class Fetches:
    """A fetch whose reads the test finishes, tracking what is held."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.gates: dict[int, asyncio.Event] = {}
        self.cancelled: list[int] = []

    async def __call__(self, ref: ChunkRef) -> int:
        self.started.append(ref.seq)
        gate = self.gates.setdefault(ref.seq, asyncio.Event())
        try:
            await gate.wait()
        except asyncio.CancelledError:
            self.cancelled.append(ref.seq)
            raise
        return ref.seq

    def finish(self, *seqs: int) -> None:
        for seq in seqs:
            self.gates.setdefault(seq, asyncio.Event()).set()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_the_window_always_admits_one_read_and_then_its_bounds():
    window = ReadAheadWindow(max_chunks=4, max_bytes=8 * MIB)
    assert window.admits(0, 0, 64 * MIB)  # larger than the window, read alone
    assert window.admits(3, 6 * MIB, 2 * MIB)
    assert not window.admits(4, 4 * MIB, MIB)  # chunks
    assert not window.admits(3, 7 * MIB, 2 * MIB)  # bytes


async def test_reads_run_ahead_within_the_byte_bound_and_come_back_in_order():
    fetches = Fetches()
    # 1 MiB chunks, room for 3 MiB: three reads at once, however many chunks.
    window = ReadAheadWindow(max_chunks=100, max_bytes=3 * MIB)
    reads = read_ahead(_refs(*[MIB] * 10), fetches, window)
    first = asyncio.ensure_future(anext(reads))
    await _settle()
    assert fetches.started == [0, 1, 2]
    fetches.finish(2, 1)  # out of order: nothing is handed on before chunk 0
    await _settle()
    assert not first.done() and fetches.started == [0, 1, 2]
    fetches.finish(0)
    assert (await first)[1] == 0
    await _settle()
    # Chunk 0 went to the consumer: one slot freed, one more read.
    assert fetches.started == [0, 1, 2, 3]
    fetches.finish(*range(10))
    assert [seq async for _, seq in reads] == list(range(1, 10))


async def test_a_slow_consumer_stops_further_reads():
    fetches = Fetches()
    fetches.finish(*range(50))  # workers answer at once
    window = ReadAheadWindow(max_chunks=8, max_bytes=4 * MIB)
    reads = read_ahead(_refs(*[MIB] * 50), fetches, window)
    assert (await anext(reads))[1] == 0
    # The consumer is now busy writing chunk 0 to a slow client: however long
    # that takes, no read starts beyond the window.
    await asyncio.sleep(0.05)
    assert len(fetches.started) == 1 + 4
    assert (await anext(reads))[1] == 1
    await _settle()
    assert len(fetches.started) == 2 + 4
    await reads.aclose()


@pytest.mark.parametrize("seed", range(5))
async def test_memory_stays_within_the_window_for_any_file_size(seed):
    rng = random.Random(seed)
    sizes = [rng.choice([4096, MIB // 2, MIB, 3 * MIB]) for _ in range(200)]
    window = ReadAheadWindow(max_chunks=6, max_bytes=5 * MIB)
    held = peak = 0

    async def fetch(ref: ChunkRef) -> int:
        nonlocal held, peak
        held += ref.size  # the chunk's bytes exist from its read on
        peak = max(peak, held)
        await asyncio.sleep(rng.random() / 1000)
        return ref.size

    got = 0
    async for ref, size in read_ahead(_refs(*sizes), fetch, window):
        got += size
        await asyncio.sleep(0)  # the consumer writes it out...
        held -= ref.size  # ...and lets it go
    assert got == sum(sizes)
    # Never more than the window plus the chunk the consumer holds.
    assert peak <= window.max_bytes + max(sizes)


async def test_closing_midway_cancels_the_reads_ahead():
    fetches = Fetches()
    fetches.finish(0)
    reads = read_ahead(_refs(*[MIB] * 6), fetches, ReadAheadWindow(3, 100 * MIB))
    assert (await anext(reads))[1] == 0
    await _settle()
    await reads.aclose()
    assert sorted(fetches.cancelled) == [1, 2, 3]


async def test_a_failed_read_fails_the_stream_at_its_place():
    async def fetch(ref: ChunkRef) -> int:
        if ref.seq == 2:
            raise OSError("no replica")
        return ref.seq

    got = []
    with pytest.raises(OSError):
        async for _, seq in read_ahead(_refs(*[10] * 5), fetch, ReadAheadWindow(4, 1000)):
            got.append(seq)
    assert got == [0, 1]
