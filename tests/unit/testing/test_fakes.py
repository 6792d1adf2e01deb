"""The fakes the master's unit tests stand on do what they say."""

from __future__ import annotations

import asyncio

import pytest

from echofs.core.chunk_codec import encode_chunk
from echofs.core.errors import ChunkMissing, CorruptChunk
from echofs.core.vocabulary import Verdict
from echofs.testing.fakes import FakeClock, FakeWorkerClient, damaged
from echofs.worker.client import LocalWorkerClient
from echofs.worker.service import WorkerService
from echofs.worker.stores.local import LocalChunkStore

CHUNK = encode_chunk(b"some bytes worth keeping" * 10)


async def test_each_operation_follows_its_script():
    client = FakeWorkerClient("w1")
    await client.put_chunk(CHUNK.chunk_id, CHUNK.frame)
    assert await client.get_chunk(CHUNK.chunk_id) == CHUNK.frame
    assert await client.verify_chunk(CHUNK.chunk_id) == Verdict.OK
    assert await client.verify_chunk("0" * 64) == Verdict.MISSING
    with pytest.raises(ChunkMissing):
        await client.get_chunk("0" * 64)

    client.get.corrupt()
    assert await client.get_chunk(CHUNK.chunk_id) == damaged(CHUNK.frame)
    client.verify.corrupt()
    assert await client.verify_chunk(CHUNK.chunk_id) == Verdict.CORRUPT
    client.verify.fail(TimeoutError())
    with pytest.raises(TimeoutError):
        await client.verify_chunk(CHUNK.chunk_id)
    assert (client.put.calls, client.get.calls, client.verify.calls) == (1, 3, 4)


async def test_a_corrupt_put_stores_a_copy_that_fails_verification():
    client = FakeWorkerClient("w1")
    client.put.corrupt()
    await client.put_chunk(CHUNK.chunk_id, CHUNK.frame)
    assert await client.verify_chunk(CHUNK.chunk_id) == Verdict.CORRUPT


async def test_hung_calls_wait_for_release_and_then_succeed():
    client = FakeWorkerClient("w1")
    client.put.hang()
    puts = [asyncio.create_task(client.put_chunk(CHUNK.chunk_id, CHUNK.frame))
            for _ in range(2)]
    await asyncio.sleep(0)
    assert client.put.waiting == 2 and not any(p.done() for p in puts)
    client.put.release()
    await asyncio.gather(*puts)
    assert client.put.waiting == 0
    assert client.frames == {CHUNK.chunk_id: CHUNK.frame}


async def test_a_wrapped_real_worker_stores_what_gets_through(tmp_path):
    real = LocalWorkerClient(WorkerService("w1", LocalChunkStore(tmp_path)))
    client = FakeWorkerClient.wrapping(real)
    await client.put_chunk(CHUNK.chunk_id, CHUNK.frame)
    assert await real.get_chunk(CHUNK.chunk_id) == CHUNK.frame
    assert client.frames == {}
    client.put.corrupt()  # the real worker checks what it is given
    with pytest.raises(CorruptChunk):
        await client.put_chunk(CHUNK.chunk_id, CHUNK.frame)


async def test_the_clock_drives_the_loop_only_when_advanced():
    with FakeClock.installed() as clock:
        sleeper = asyncio.create_task(asyncio.sleep(30))
        await clock.tick(29.9)
        assert not sleeper.done()
        await clock.tick(0.1)
        assert sleeper.done()
    assert asyncio.get_running_loop().time() != clock()
