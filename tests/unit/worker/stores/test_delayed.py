"""The slow-disk fault: off by default, +delay per write when set, nothing
else changed."""

from __future__ import annotations

import time

from echofs.config import Settings
from echofs.core.chunk_codec import encode_chunk
from echofs.worker.stores.delayed import DelayedStore, with_injected_faults
from echofs.worker.stores.local import LocalChunkStore


def test_no_fault_is_injected_by_default(tmp_path):
    store = LocalChunkStore(tmp_path / "s")
    assert with_injected_faults(store, Settings.load(env={})) is store


def test_the_setting_wraps_the_store(tmp_path):
    store = LocalChunkStore(tmp_path / "s")
    wrapped = with_injected_faults(store, Settings.load(env={"FAULT_STORE_PUT_DELAY_MS": "200"}))
    assert isinstance(wrapped, DelayedStore)
    assert wrapped.delay == 0.2
    assert "injected" in wrapped.description


async def test_writes_are_delayed_and_reads_are_not(tmp_path):
    store = DelayedStore(LocalChunkStore(tmp_path / "s"), 0.05)
    await store.open()
    chunk = encode_chunk(b"x" * 1000)
    began = time.monotonic()
    await store.put(chunk.chunk_id, chunk.frame)
    assert time.monotonic() - began >= 0.05
    began = time.monotonic()
    assert await store.get(chunk.chunk_id) == chunk.frame
    assert await store.has(chunk.chunk_id)
    assert [c async for c in store.list_ids()] == [chunk.chunk_id]
    assert time.monotonic() - began < 0.05
    assert await store.delete(chunk.chunk_id)
    assert store.delayed_puts == 1
    await store.close()
