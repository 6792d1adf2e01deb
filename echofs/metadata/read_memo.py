"""Answers to read queries kept in memory while this process is the only writer.

A master that owns its SQLite metadata file exclusively (see
``echofs.metadata.ownership``) sees every write the store will ever get: each
goes through its own repository. So the repository can keep the answers of
its hot read queries (a file by path or id, a version's manifest, replicas)
and serve them again until the next write that could change them.

Invalidation is deliberately coarse: one generation number, bumped after every
write transaction that can change what a read returns. An answer is stored
with the generation current when its query *began*, and only if no write
finished meanwhile; it is served only while that generation is still current.
So an answer is never older than the last write acknowledged before the read
started — the same guarantee the database gives. A write in progress may
still see old answers until its transaction commits, which is as it would be
without the memo (the writer has not acknowledged anything yet).

Several masters on one database (PostgreSQL) never use this: another master's
writes would not bump our generation.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from typing import Any

# Enough for the hot set of a busy node; values are small frozen records
# (manifests of more than ``MAX_CHUNKS`` chunks are not kept at all).
DEFAULT_ENTRIES = 20_000
MAX_CHUNKS = 64


class ReadMemo:
    def __init__(self, max_entries: int = DEFAULT_ENTRIES) -> None:
        self.max_entries = max_entries
        self.generation = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, tuple[int, Any]] = OrderedDict()

    def bump(self) -> None:
        """A write that may change read answers has finished (or failed)."""
        self.generation += 1
        # Everything stored is now unusable; drop it rather than let it age out.
        self._entries.clear()

    def get(self, key: Hashable) -> tuple[bool, Any]:
        found = self._entries.get(key)
        if found is None or found[0] != self.generation:
            self.misses += 1
            return False, None
        self._entries.move_to_end(key)
        self.hits += 1
        return True, found[1]

    def put(self, key: Hashable, began: int, value: Any) -> None:
        """Keep ``value``, read by a query that began at generation ``began``."""
        if began != self.generation:
            return  # a write finished while the query ran: the answer may be old
        self._entries[key] = (began, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
