"""Answers to read queries kept in memory while this process is the only writer.

A master that owns its SQLite metadata file exclusively (see
``echofs.metadata.ownership``) sees every write the store will ever get: each
goes through its own repository. So the repository can keep the answers of
its hot read queries (a file by path or id, "no such file", a version's
manifest and replicas) and serve them again until a write changes them.

Every answer is filed under *tags* — the files it describes, by id and by
(owner, name), and for a version each chunk it uses (see
``echofs.metadata.memoized``). Every write states the tags it invalidates:

- a new version: its file's (and the chunks that gained copies);
- a delete: the file it removes, by id and by name;
- a copy added: the versions using its chunk;
- claims, touches, the collector, the replication queue, accounts and the
  controller's state: nothing a memoized answer reads.

Races: an answer is kept only if no invalidation of its tags (or of
everything) happened after its query *began* — a query that overlapped a
write may have read the old state. So an answer served from memory is never
older than the last write acknowledged before the read started: the same
guarantee the database gives.

Several masters on one database (PostgreSQL) never use this: another master's
writes would not reach our memo.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Any

# Enough for the hot set of a busy node; values are small frozen records
# (manifests of more than ``MAX_CHUNKS`` chunks are not kept at all).
DEFAULT_ENTRIES = 20_000
MAX_CHUNKS = 64
# Invalidation marks kept per tag before they are folded into one "everything"
# mark (which also empties the memo).
_MAX_MARKS = 100_000


class ReadMemo:
    def __init__(self, max_entries: int = DEFAULT_ENTRIES) -> None:
        self.max_entries = max_entries
        self.generation = 0
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[Hashable, tuple[Any, tuple[Hashable, ...]]] = OrderedDict()
        self._by_tag: dict[Hashable, set[Hashable]] = {}
        self._floor = 0  # generation of the last invalidation of everything
        self._marks: dict[Hashable, int] = {}  # tag -> generation of its last invalidation

    def invalidate_all(self) -> None:
        """Forget every answer (when the marks of single tags grow too many)."""
        self.generation += 1
        self._floor = self.generation
        self._entries.clear()
        self._by_tag.clear()
        self._marks.clear()

    def invalidate(self, tags: Iterable[Hashable]) -> None:
        """A write that changes only what is filed under ``tags`` has finished."""
        self.generation += 1
        for tag in tags:
            self._marks[tag] = self.generation
            for key in self._by_tag.pop(tag, ()):
                self._drop(key)
        if len(self._marks) > _MAX_MARKS:
            self.invalidate_all()

    def get(self, key: Hashable) -> tuple[bool, Any]:
        found = self._entries.get(key)
        if found is None:
            self.misses += 1
            return False, None
        self._entries.move_to_end(key)
        self.hits += 1
        return True, found[0]

    def put(self, key: Hashable, began: int, value: Any, tags: tuple[Hashable, ...]) -> None:
        """Keep ``value``, read by a query that began at generation ``began``."""
        if self._floor > began or any(self._marks.get(tag, 0) > began for tag in tags):
            return  # a write finished while the query ran: the answer may be old
        self._drop(key)
        self._entries[key] = (value, tags)
        for tag in tags:
            self._by_tag.setdefault(tag, set()).add(key)
        while len(self._entries) > self.max_entries:
            self._drop(next(iter(self._entries)))

    def _drop(self, key: Hashable) -> None:
        found = self._entries.pop(key, None)
        if found is None:
            return
        for tag in found[1]:
            keys = self._by_tag.get(tag)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_tag[tag]

    def __len__(self) -> int:
        return len(self._entries)
