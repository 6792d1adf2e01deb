"""Where a chunk's replicas go: rendezvous (highest-random-weight) hashing.

Every (chunk, worker) pair gets a score; the chunk's placement is the RF
workers with the highest scores. Adding or removing a worker only moves the
chunks whose top-RF set included it, and every master computes the same
placement from the same membership, with no shared table.
"""

from __future__ import annotations

from collections.abc import Iterable

import blake3


def _score(chunk_id: str, worker_id: str) -> int:
    digest = blake3.blake3(f"{chunk_id}\x00{worker_id}".encode()).digest(length=8)
    return int.from_bytes(digest, "big")


def rank_workers(chunk_id: str, worker_ids: Iterable[str]) -> list[str]:
    """All workers, best placement first."""
    return sorted(worker_ids, key=lambda w: (_score(chunk_id, w), w), reverse=True)


def place(chunk_id: str, worker_ids: Iterable[str], replication_factor: int) -> list[str]:
    """The chunk's placement targets: the top ``replication_factor`` workers."""
    return rank_workers(chunk_id, worker_ids)[:replication_factor]


def write_quorum(replication_factor: int) -> int:
    """Strict majority of the placement targets: floor(RF/2) + 1."""
    if replication_factor < 1:
        raise ValueError("replication factor must be at least 1")
    return replication_factor // 2 + 1
