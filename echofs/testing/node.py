"""An embedded node on a free loopback port, and ways to look inside it.

Tests use it to drive the real HTTP API against real stores and SQLite, and
to inspect or damage what each worker holds on disk (bit rot, lost records,
wiped disks; see ``echofs.testing.disk``), which is how durability claims get
proven.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from echofs.config import Settings
from echofs.node import EmbeddedNode
from echofs.testing import disk
from echofs.testing.disk import StoredCopy, stored_copies


@asynccontextmanager
async def running_node(data_dir: Path, **overrides: Any) -> AsyncIterator[EmbeddedNode]:
    """An embedded node (role all) on 127.0.0.1 and a free port."""
    settings = Settings.load(env={}, overrides={"data_dir": data_dir, "port": 0,
                                                "host": "127.0.0.1", **overrides})
    async with EmbeddedNode(settings) as node:
        yield node


def worker_root(node: EmbeddedNode, worker_id: str) -> Path:
    return node.settings.data_dir / "workers" / worker_id


def stored_chunks(node: EmbeddedNode, worker_id: str | None = None
                  ) -> dict[str, list[StoredCopy]]:
    """Chunk id -> its copies on disk, on one worker or all."""
    found: dict[str, list[StoredCopy]] = {}
    ids = [worker_id] if worker_id else [w.worker_id for w in node.workers]
    for wid in ids:
        for chunk_id, copy in stored_copies(worker_root(node, wid)).items():
            found.setdefault(chunk_id, []).append(copy)
    return found


def stored_frame(node: EmbeddedNode, worker_id: str, chunk_id: str) -> bytes | None:
    """The frame of a chunk as a worker's disk holds it, None if it does not."""
    return disk.stored_frame(worker_root(node, worker_id), chunk_id)


def flip_chunk_byte(node: EmbeddedNode, worker_id: str, chunk_id: str,
                    offset: int = -1) -> None:
    """Bit rot in one worker's copy of a chunk (``offset`` into its frame)."""
    disk.flip_stored_byte(worker_root(node, worker_id), chunk_id, offset)


def lose_chunk(node: EmbeddedNode, worker_id: str, chunk_id: str) -> None:
    """One worker's copy of a chunk gone from its disk."""
    disk.lose_stored_chunk(worker_root(node, worker_id), chunk_id)


def stored_bytes(node: EmbeddedNode) -> int:
    return sum(c.length for copies in stored_chunks(node).values() for c in copies)


async def drain_replication(node: EmbeddedNode, within: float = 10.0) -> None:
    """Run the replicator until its queue is empty (tasks in backoff included)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        await node.master.replicator.run_once()
        depth, _ = await node.repo.replication_backlog()
        if depth == 0:
            return
        if loop.time() > deadline:
            raise AssertionError(f"replication queue still holds {depth} task(s)")
        await asyncio.sleep(0.1)
