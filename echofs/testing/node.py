"""An embedded node on a free loopback port, and ways to look inside it.

Tests use it to drive the real HTTP API against real stores and SQLite, and
to inspect or damage what each worker holds on disk (bit rot, lost files,
wiped disks), which is how durability claims get proven.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from echofs.config import Settings
from echofs.node import EmbeddedNode


@asynccontextmanager
async def running_node(data_dir: Path, **overrides: Any) -> AsyncIterator[EmbeddedNode]:
    """An embedded node (role all) on 127.0.0.1 and a free port."""
    settings = Settings.load(env={}, overrides={"data_dir": data_dir, "port": 0,
                                                "host": "127.0.0.1", **overrides})
    async with EmbeddedNode(settings) as node:
        yield node


def worker_root(node: EmbeddedNode, worker_id: str) -> Path:
    return node.settings.data_dir / "workers" / worker_id


def chunk_files(node: EmbeddedNode, worker_id: str | None = None) -> dict[str, list[Path]]:
    """Chunk id → the files holding it, on one worker or all."""
    found: dict[str, list[Path]] = {}
    ids = [worker_id] if worker_id else [w.worker_id for w in node.workers]
    for wid in ids:
        for path in (worker_root(node, wid) / "chunks").glob("*/*/*"):
            found.setdefault(path.name, []).append(path)
    return found


def chunk_path(node: EmbeddedNode, worker_id: str, chunk_id: str) -> Path:
    return worker_root(node, worker_id) / "chunks" / chunk_id[:2] / chunk_id[2:4] / chunk_id


def stored_bytes(node: EmbeddedNode) -> int:
    return sum(p.stat().st_size for paths in chunk_files(node).values() for p in paths)


def flip_byte(path: Path, offset: int = -1) -> None:
    """Bit rot: invert one byte of a stored file in place."""
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


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
