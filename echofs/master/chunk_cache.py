"""Small chunks' bytes kept in the master's memory, written through by uploads.

A chunk's id is the BLAKE3 digest of its bytes, so a cached chunk can never
be stale: the same id always means the same bytes. What a read may serve is
still decided by the metadata (file, version, manifest) on every request;
the cache only saves the trip to a worker for bytes already known to be
right: they were hashed by this master as they were uploaded, or verified
against their id when read from a worker. A corrupt copy on a worker is not
seen by a read the cache answers; the scrubber finds it.

Only small chunks are kept (a 4 KiB file is one small chunk; the chunks of
large files would push everything else out and count against the master's
memory), under a byte budget, least recently used out first.
"""

from __future__ import annotations

from collections import OrderedDict

from echofs.observability import metrics

# A chunk larger than this is never kept.
MAX_CACHED_CHUNK = 64 * 1024


class ChunkCache:
    def __init__(self, budget_bytes: int, *, max_chunk: int = MAX_CACHED_CHUNK) -> None:
        self.budget = max(0, budget_bytes)
        self.max_chunk = min(max_chunk, self.budget)
        self._chunks: OrderedDict[str, bytes] = OrderedDict()
        self.size = 0

    def admits(self, size: int) -> bool:
        return 0 < size <= self.max_chunk

    def get(self, chunk_id: str) -> bytes | None:
        raw = self._chunks.get(chunk_id)
        if raw is None:
            metrics.CHUNK_CACHE.labels("miss").inc()
            return None
        self._chunks.move_to_end(chunk_id)
        metrics.CHUNK_CACHE.labels("hit").inc()
        return raw

    def put(self, chunk_id: str, raw: bytes) -> None:
        """Keep ``raw``, which must be the verified bytes of ``chunk_id``."""
        if not self.admits(len(raw)) or chunk_id in self._chunks:
            return
        self._chunks[chunk_id] = raw
        self.size += len(raw)
        while self.size > self.budget:
            _, evicted = self._chunks.popitem(last=False)
            self.size -= len(evicted)

    def __len__(self) -> int:
        return len(self._chunks)
