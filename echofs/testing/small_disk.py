"""A small file system of its own, for tests that fill a disk for real.

A tmpfs of a few MB mounted on a folder (root only) and unmounted when the
block ends, whatever happens in it. Where mounting is not permitted,
:class:`SmallDiskUnavailable` says why, for the test to skip with.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from echofs.core.chunk_codec import EncodedChunk, encode_chunk
from echofs.core.errors import InsufficientStorage
from echofs.worker.stores.base import ChunkStore


class SmallDiskUnavailable(RuntimeError):
    """This process may not mount a file system here."""


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (``8m``) mounted at ``where`` for the block."""
    if os.geteuid() != 0:
        raise SmallDiskUnavailable("mounting a small file system needs root")
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SmallDiskUnavailable(f"cannot mount a tmpfs: {done.stderr.strip()}")
    try:
        yield where
    finally:
        # Lazy: a file a crashed server still holds open must not keep the
        # mount (and the test's temporary folder) around.
        subprocess.run(["umount", "-l", str(where)], check=False, capture_output=True)


async def fill_store(store: ChunkStore, size: int = 200 * 1024,
                     limit: int = 200) -> tuple[list[EncodedChunk], InsufficientStorage]:
    """Put incompressible chunks until the store refuses one for want of
    room: those stored, and the refusal."""
    stored = []
    for _ in range(limit):
        enc = encode_chunk(os.urandom(size))
        try:
            await store.put(enc.chunk_id, enc.frame)
        except InsufficientStorage as exc:
            return stored, exc
        stored.append(enc)
    raise AssertionError("the disk never filled")
