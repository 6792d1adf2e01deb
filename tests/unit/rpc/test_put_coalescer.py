"""Small puts to one worker leave together, and each still ends on its own."""

from __future__ import annotations

import asyncio

import pytest

from echofs.rpc.put_coalescer import SMALL_FRAME, BatchUnsupported, PutCoalescer


class _Worker:
    def __init__(self) -> None:
        self.batches: list[list[str]] = []
        self.unary: list[str] = []
        self.gate = asyncio.Event()
        self.gate.set()
        self.fail_call: Exception | None = None
        self.refuse: set[str] = set()
        self.supports_batches = True

    async def send_batch(self, items):
        if not self.supports_batches:
            raise BatchUnsupported("PutChunks")
        self.batches.append(list(items))
        await self.gate.wait()
        if self.fail_call is not None:
            raise self.fail_call
        return [ValueError(f"refused {c}") if c in self.refuse else None for c in items]

    async def send_one(self, chunk_id):
        self.unary.append(chunk_id)


def _coalescer(worker: _Worker, **limits) -> PutCoalescer:
    return PutCoalescer(worker.send_batch, worker.send_one, **limits)


async def test_puts_arriving_while_calls_are_in_flight_leave_together():
    worker = _Worker()
    worker.gate.clear()
    puts = _coalescer(worker, max_in_flight=2)
    first = [asyncio.create_task(puts.put(f"a{i}", 1)) for i in range(3)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    later = [asyncio.create_task(puts.put(f"b{i}", 1)) for i in range(50)]
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    third = [asyncio.create_task(puts.put(f"c{i}", 1)) for i in range(5)]
    await asyncio.sleep(0.01)
    # Two calls on the wire (the first three, then the next fifty); the
    # last five wait for a free slot.
    assert worker.batches == [[f"a{i}" for i in range(3)], [f"b{i}" for i in range(50)]]
    worker.gate.set()
    await asyncio.gather(*first, *later, *third)
    assert worker.batches[2] == [f"c{i}" for i in range(5)]


async def test_batches_are_bounded_by_items_and_bytes():
    worker = _Worker()
    worker.gate.clear()
    puts = _coalescer(worker, max_items=4, max_bytes=10, max_in_flight=1)
    tasks = [asyncio.create_task(puts.put(f"c{i}", 5)) for i in range(6)]
    await asyncio.sleep(0)
    worker.gate.set()
    await asyncio.gather(*tasks)
    assert all(len(b) <= 2 for b in worker.batches)  # 10 bytes: two 5-byte frames
    assert sum(len(b) for b in worker.batches) == 6


async def test_one_refused_item_fails_alone():
    worker = _Worker()
    worker.refuse = {"c3"}
    puts = _coalescer(worker)
    outcomes = await asyncio.gather(*(puts.put(f"c{i}", 1) for i in range(6)),
                                    return_exceptions=True)
    assert [type(o).__name__ for o in outcomes] == ["NoneType"] * 3 + ["ValueError"] + [
        "NoneType"] * 2


async def test_a_failed_call_fails_only_the_puts_it_carried():
    worker = _Worker()
    worker.fail_call = ConnectionError("Connection lost")
    puts = _coalescer(worker)
    outcomes = await asyncio.gather(*(puts.put(f"c{i}", 1) for i in range(4)),
                                    return_exceptions=True)
    assert all(isinstance(o, ConnectionError) for o in outcomes)
    worker.fail_call = None
    await puts.put("later", 1)  # the coalescer is not stuck after a failure
    assert worker.batches[-1] == ["later"]


async def test_large_frames_and_old_workers_get_unary_puts():
    worker = _Worker()
    puts = _coalescer(worker)
    await puts.put("big", SMALL_FRAME + 1)
    assert worker.unary == ["big"] and worker.batches == []
    worker.supports_batches = False
    await asyncio.gather(*(puts.put(f"c{i}", 1) for i in range(3)))
    await puts.put("after", 1)
    assert worker.unary == ["big", "c0", "c1", "c2", "after"]


async def test_a_put_whose_caller_gave_up_is_not_sent():
    worker = _Worker()
    worker.gate.clear()
    puts = _coalescer(worker, max_in_flight=1)
    first = asyncio.create_task(puts.put("first", 1))
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.01):
            await puts.put("abandoned", 1)
    worker.gate.set()
    await first
    await puts.put("next", 1)
    assert [c for b in worker.batches for c in b] == ["first", "next"]
