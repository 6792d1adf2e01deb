"""The default local chunk store: frames appended to large volume files.

``store`` is the :class:`VolumeChunkStore` itself; ``records`` the on-disk
record format; ``index`` the in-memory index and its snapshot; ``recovery``
what opening a store does; ``appender`` the writer thread (group commit);
``compaction`` how garbage is reclaimed; ``legacy`` the one-file-per-chunk
layout it still reads and converts; ``files`` volume names and read handles.
"""

from echofs.worker.stores.volume.store import VolumeChunkStore

__all__ = ["VolumeChunkStore"]
