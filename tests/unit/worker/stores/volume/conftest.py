"""Shared by the volume store's tests: stores opened on a folder, closed
after the test (helpers to look at their files are in echofs.testing.disk)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from echofs.worker.stores.volume import VolumeChunkStore

OpenStore = Callable[..., Awaitable[VolumeChunkStore]]  # the open_store fixture


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "store"


@pytest.fixture
async def open_store(root: Path) -> AsyncIterator[OpenStore]:
    """``await open_store(path=root, **options)``: an open store, closed at the end."""
    opened: list[VolumeChunkStore] = []

    async def open_(path: Path | None = None, **options: Any) -> VolumeChunkStore:
        store = VolumeChunkStore(path or root, **options)
        await store.open()
        opened.append(store)
        return store

    yield open_
    for store in opened:
        await store.close()
