"""Chunk stores: where a worker keeps its chunk frames (local disk, S3 later)."""

from __future__ import annotations

from pathlib import Path

from echofs.worker.stores.base import ChunkStore
from echofs.worker.stores.local import LocalChunkStore


def open_store(spec: str) -> ChunkStore:
    """Build a store from a ``--store`` value: ``local:/path`` or a bare path."""
    kind, sep, rest = spec.partition(":")
    if sep and kind == "local":
        return LocalChunkStore(Path(rest))
    if "://" in spec:
        raise ValueError(f"unsupported chunk store {spec!r}; only local:/path exists so far")
    return LocalChunkStore(Path(spec))


__all__ = ["ChunkStore", "LocalChunkStore", "open_store"]
