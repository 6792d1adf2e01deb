"""How long the cluster takes to hold every lost copy again (worker-lost).

The ground truth is the workers' own stores, not the master's metadata:
just before a worker is lost, the chunks it holds are listed (over gRPC,
straight to the worker, past the fault proxy); from the loss on, every
worker's store is listed again every ``poll`` seconds, and a lost chunk
counts as restored once ``replication_factor`` workers hold it again — or
once no worker holds it at all (the collector removed it: a superseded
version's chunk, nothing to restore). Full redundancy is the moment every
lost chunk is restored.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

Lister = Callable[[str], Awaitable[set[str]]]  # worker id -> the chunks it holds


@dataclass
class Redundancy:
    """The lost copies and how far their restoration got."""

    lost: set[str]
    replication_factor: int
    seconds: float | None = None  # from the loss to full redundancy (None: not reached)
    short: int = 0  # lost chunks still below RF at the last look
    collected: int = 0  # lost chunks no worker holds any more (garbage, removed)
    looks: int = 0
    timeline: list[tuple[float, int]] = field(default_factory=list)  # (s since loss, short)

    def to_json(self) -> dict[str, Any]:
        return {"chunks_lost": len(self.lost), "replication_factor": self.replication_factor,
                "seconds_to_full_redundancy": None if self.seconds is None
                else round(self.seconds, 3),
                "short_at_end": self.short, "collected": self.collected, "looks": self.looks,
                "timeline": [[round(t, 2), n] for t, n in self.timeline[:120]]}


def shortfall(lost: Iterable[str], holdings: dict[str, set[str]],
              replication_factor: int) -> tuple[int, int]:
    """Lost chunks still held by fewer than RF workers (but by some), and
    those held by none."""
    copies = Counter(c for chunks in holdings.values() for c in chunks)
    short = gone = 0
    for chunk_id in lost:
        n = copies.get(chunk_id, 0)
        if n == 0:
            gone += 1
        elif n < replication_factor:
            short += 1
    return short, gone


async def watch(lost: set[str], workers: list[str], list_chunks: Lister, *,
                since: float, replication_factor: int, until: Callable[[], bool],
                poll: float = 0.5) -> Redundancy:
    """Poll the workers' stores until every lost chunk is restored, or
    ``until()`` says to stop looking."""
    result = Redundancy(lost, replication_factor)
    while True:
        holdings: dict[str, set[str]] = {}
        for worker_id in workers:
            # A worker that does not answer (the lost one, restarting) holds
            # nothing as far as redundancy goes.
            with contextlib.suppress(Exception):
                holdings[worker_id] = await list_chunks(worker_id)
        short, gone = shortfall(lost, holdings, replication_factor)
        missing = {w for w in workers if w not in holdings}
        elapsed = time.time() - since
        result.looks += 1
        result.short, result.collected = short, gone
        result.timeline.append((elapsed, result.short))
        if not missing and short == 0:
            result.seconds = elapsed
            return result
        if until():
            return result
        await asyncio.sleep(poll)
