"""How long each worker takes to answer a chunk read, and when a read has
waited long enough to ask another replica too (a hedged read).

A worker that is frozen (SIGSTOP, a stalled disk, a partition that swallows
packets) keeps its connections open and answers nothing; waiting for the
read timeout (10 s) before trying the next replica stalls the download that
long. The hedging delay is the worker's recent p99 read latency: only reads
slower than nearly all of its recent ones are hedged, so a healthy cluster
sends few duplicate reads. It is clamped: below ``min_delay`` a scheduling
hiccup would double the reads, above ``max_delay`` the stall is felt anyway.

A worker whose read was hedged around is *lagging* for a while: reads try it
after the other replicas, so one frozen worker costs one hedging delay, not
one per chunk, until it answers a read again.

A read that outlives the delay while its worker answers other reads is
queued behind them, not stalled: under many concurrent large reads a p99
taken a moment earlier is soon exceeded by every read, and hedging them all
doubled the work (about one 1 MiB read in ten was asked twice). Such a read
waits on, up to ``max_delay`` in all; a frozen worker answers nothing and is
hedged after the first delay as before.
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Iterable

# Recent reads per worker the p99 is taken over: enough for a p99 that moves
# with the worker's load, few enough to sort on every hedged read.
_SAMPLES = 64
# Fewer samples than this say too little: the worker gets ``max_delay``.
_MIN_SAMPLES = 5
# How long a worker that was hedged around stays at the back of read orders
# unless it answers a read meanwhile.
_LAGGING_FOR = 10.0


class ReadLatencies:
    def __init__(self, *, min_delay: float, max_delay: float) -> None:
        self.min_delay = min_delay
        self.max_delay = max(min_delay, max_delay)
        self._samples: dict[str, deque[float]] = {}
        self._lagging_until: dict[str, float] = {}
        self._answered_at: dict[str, float] = {}

    def observe(self, worker_id: str, seconds: float) -> None:
        """A read ``worker_id`` answered in ``seconds``."""
        samples = self._samples.get(worker_id)
        if samples is None:
            samples = self._samples[worker_id] = deque(maxlen=_SAMPLES)
        samples.append(seconds)
        self._lagging_until.pop(worker_id, None)
        self._answered_at[worker_id] = time.monotonic()

    def answered_since(self, worker_id: str, since: float) -> bool:
        """Whether ``worker_id`` answered a read after ``since`` (monotonic)."""
        return self._answered_at.get(worker_id, -math.inf) > since

    def hedge_delay(self, worker_id: str) -> float:
        """How long a read from ``worker_id`` runs alone before the next
        replica is asked too."""
        samples = self._samples.get(worker_id)
        if samples is None or len(samples) < _MIN_SAMPLES:
            return self.max_delay
        ordered = sorted(samples)
        p99 = ordered[min(len(ordered) - 1, math.ceil(0.99 * len(ordered)) - 1)]
        return min(max(p99, self.min_delay), self.max_delay)

    def typical(self, worker_id: str) -> float | None:
        """``worker_id``'s median recent read latency; None until it has
        answered enough reads to say."""
        samples = self._samples.get(worker_id)
        if samples is None or len(samples) < _MIN_SAMPLES:
            return None
        return statistics.median(samples)

    def note_lagging(self, worker_id: str) -> None:
        """A read from ``worker_id`` was hedged around."""
        self._lagging_until[worker_id] = time.monotonic() + _LAGGING_FOR

    def lagging(self, worker_id: str) -> bool:
        until = self._lagging_until.get(worker_id)
        return until is not None and time.monotonic() < until

    def order(self, workers: Iterable[str]) -> list[str]:
        """``workers`` (in the registry's read order) with lagging ones last."""
        ordered = list(workers)
        if not self._lagging_until:
            return ordered
        return sorted(ordered, key=self.lagging)  # stable: the read order otherwise
