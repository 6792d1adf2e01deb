"""The in-process cache: the default, and all a single master needs.

Manifests live in a bounded LRU (bounded by chunk references, so a few huge
files cannot take all the memory); rate limits are fixed one-minute windows.
The Redis cache also uses these, as its local layer and as its fallback while
Redis is away.
"""

from __future__ import annotations

import time
from collections import OrderedDict

from echofs.cache.base import Cache, without_replicas
from echofs.core.manifest import VersionRecord

# Chunk references kept in all (~150 bytes each: ~30 MiB).
DEFAULT_MAX_CHUNKS = 200_000


class InProcessCache(Cache):
    description = "in-process"

    def __init__(self, max_chunks: int = DEFAULT_MAX_CHUNKS) -> None:
        self.max_chunks = max_chunks
        self._manifests: OrderedDict[tuple[str, int], VersionRecord] = OrderedDict()
        self._versions: dict[str, set[int]] = {}
        self._weight = 0
        self._window = -1
        self._counts: dict[str, int] = {}

    @staticmethod
    def _weigh(version: VersionRecord) -> int:
        return max(1, len(version.chunks))

    async def get_manifest(self, file_id: str, version: int) -> VersionRecord | None:
        return self.get_local(file_id, version)

    def get_local(self, file_id: str, version: int) -> VersionRecord | None:
        found = self._manifests.get((file_id, version))
        if found is not None:
            self._manifests.move_to_end((file_id, version))
        return found

    async def put_manifest(self, version: VersionRecord) -> None:
        self.put_local(without_replicas(version))

    def put_local(self, version: VersionRecord) -> None:
        weight = self._weigh(version)
        if weight > self.max_chunks // 10:
            return  # one file must not push out everything else
        key = (version.file_id, version.version)
        old = self._manifests.pop(key, None)
        if old is not None:
            self._weight -= self._weigh(old)
        self._manifests[key] = version
        self._versions.setdefault(version.file_id, set()).add(version.version)
        self._weight += weight
        while self._weight > self.max_chunks:
            (file_id, number), evicted = self._manifests.popitem(last=False)
            self._weight -= self._weigh(evicted)
            self._forget_version(file_id, number)

    def _forget_version(self, file_id: str, number: int) -> None:
        numbers = self._versions.get(file_id)
        if numbers is not None:
            numbers.discard(number)
            if not numbers:
                del self._versions[file_id]

    async def invalidate(self, file_id: str) -> None:
        self.drop_local(file_id)

    def drop_local(self, file_id: str) -> None:
        for number in self._versions.pop(file_id, ()):
            evicted = self._manifests.pop((file_id, number), None)
            if evicted is not None:
                self._weight -= self._weigh(evicted)

    def clear_local(self) -> None:
        self._manifests.clear()
        self._versions.clear()
        self._weight = 0

    def __len__(self) -> int:
        return len(self._manifests)

    async def hit(self, user: str, per_minute: int) -> float | None:
        now = time.time()
        window = int(now // 60)
        if window != self._window:
            self._window, self._counts = window, {}
        count = self._counts.get(user, 0) + 1
        self._counts[user] = count
        return None if count <= per_minute else (window + 1) * 60 - now
