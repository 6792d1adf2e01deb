"""The cache a master reads through, whatever keeps it (in-process or Redis).

Two services, one object:

- **Manifests** by (file id, version number): a version's facts and chunk
  list — never its replicas, which change as copies move and are always read
  fresh from the database. An entry is a hint, not a source of truth: the read
  path (``echofs.master.manifests``) uses one only for the version the
  database has just named current, with the same BLAKE3, so a lost or late
  invalidation costs a miss, never a stale or wrong answer. ``invalidate``
  drops every version of a file here and, with Redis, on every master.
- **Rate limits**: ``hit`` counts one request of a user in the current minute
  and says how long to wait if that went over the limit.

Every implementation runs the same contract (tests/unit/cache/test_contract.py).
"""

from __future__ import annotations

import abc
import dataclasses
import json

from echofs.core.manifest import ChunkRef, VersionRecord


class Cache(abc.ABC):
    description: str = "cache"
    # False while a shared cache is unreachable (reads then go to the database).
    available: bool = True

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Connect, subscribe, start background work."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and stop background work."""

    @abc.abstractmethod
    async def get_manifest(self, file_id: str, version: int) -> VersionRecord | None:
        """The cached manifest (replicas empty), or None."""

    @abc.abstractmethod
    async def put_manifest(self, version: VersionRecord) -> None:
        """Remember a manifest read from the database (replicas are dropped)."""

    @abc.abstractmethod
    async def invalidate(self, file_id: str) -> None:
        """Forget every version of a file: it has a new version, or lost some."""

    @abc.abstractmethod
    async def hit(self, user: str, per_minute: int) -> float | None:
        """Count a request of ``user``: None if within ``per_minute`` this
        minute, else the seconds until the next minute lets it through."""


# -- how a manifest is stored outside the process --------------------------------------

_FACTS = [f.name for f in dataclasses.fields(VersionRecord) if f.name != "chunks"]


def without_replicas(version: VersionRecord) -> VersionRecord:
    return dataclasses.replace(version, chunks=tuple(
        dataclasses.replace(c, replicas=()) for c in version.chunks))


def encode_manifest(version: VersionRecord) -> bytes:
    body: dict[str, object] = {name: getattr(version, name) for name in _FACTS}
    body["chunks"] = [[c.seq, c.chunk_id, c.offset, c.size, c.compressed]
                      for c in version.chunks]
    return json.dumps(body, separators=(",", ":")).encode()


def decode_manifest(raw: bytes) -> VersionRecord | None:
    """The manifest, or None if ``raw`` is not one this EchoFS understands
    (written by another version during an upgrade: a miss, not an error)."""
    try:
        body = json.loads(raw)
        chunks = tuple(ChunkRef(seq, chunk_id, offset, size, compressed)
                       for seq, chunk_id, offset, size, compressed in body.pop("chunks"))
        return VersionRecord(**body, chunks=chunks)
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
