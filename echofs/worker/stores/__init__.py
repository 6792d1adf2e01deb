"""Chunk stores: where a worker keeps its chunk frames (local disk or S3).

On local disk the default is :class:`VolumeChunkStore` (frames appended to
volume files); :class:`LocalChunkStore` (one file per frame) is the layout
it replaced, still read by it, and selectable as ``files:/path``.
"""

from __future__ import annotations

from pathlib import Path

from echofs.core.space import NO_RESERVE, SpaceReserve
from echofs.worker.stores.base import ChunkStore
from echofs.worker.stores.local import LocalChunkStore
from echofs.worker.stores.volume import VolumeChunkStore


def open_store(spec: str, *, worker_id: str | None = None, s3_bucket: str | None = None,
               s3_endpoint_url: str | None = None, aws_region: str | None = None,
               reserve: SpaceReserve = NO_RESERVE) -> ChunkStore:
    """Build a store from a ``--store`` value: ``local:/path`` (or a bare path)
    for volumes, ``files:/path`` for one file per chunk, or ``s3://BUCKET/PREFIX``
    (an empty bucket means ``s3_bucket``, an empty prefix the worker's id;
    credentials come from the usual AWS chain). ``reserve``: the free space
    a local store keeps back (an object store has no disk to keep it on)."""
    if spec.startswith("s3://"):
        from echofs.worker.stores.s3 import S3ChunkStore

        return S3ChunkStore.from_spec(spec, default_prefix=worker_id, bucket=s3_bucket,
                                      endpoint_url=s3_endpoint_url, region=aws_region)
    kind, sep, rest = spec.partition(":")
    if sep and kind == "local":
        return VolumeChunkStore(Path(rest), reserve=reserve)
    if sep and kind == "files":
        return LocalChunkStore(Path(rest), reserve=reserve)
    if "://" in spec:
        raise ValueError(f"unsupported chunk store {spec!r}; use local:/path, files:/path "
                         "or s3://bucket/prefix")
    return VolumeChunkStore(Path(spec), reserve=reserve)


__all__ = ["ChunkStore", "LocalChunkStore", "VolumeChunkStore", "open_store"]
