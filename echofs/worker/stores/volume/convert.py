"""``echofs store convert PATH``: move a store folder's one-file-per-chunk
chunks into volumes, offline (the worker stopped: the store's lock refuses a
second process).

It opens the folder as the worker would, which already serves those files,
then appends them to volumes in groups that share an fdatasync and removes
each file only after its copy is acknowledged (see ``legacy``). Interrupted
at any point, running it again finishes the job; the worker may also be
started in between, since it serves whatever is still in files.
"""

from __future__ import annotations

from pathlib import Path

from echofs.worker.stores.volume.legacy import MigrateReport, Progress
from echofs.worker.stores.volume.store import VolumeChunkStore


async def convert_store(root: Path, progress: Progress | None = None) -> MigrateReport:
    if not (root / "chunks").is_dir() and not (root / "volumes").is_dir():
        raise ValueError(f"{root} holds no chunk store (no chunks/ or volumes/ folder)")
    store = VolumeChunkStore(root)
    await store.open()
    try:
        return await store.convert_legacy(progress)
    finally:
        await store.close()
