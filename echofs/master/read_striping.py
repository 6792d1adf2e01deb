"""Which replica a download asks first for each of its chunks.

Asking every chunk of a large file from the same replica (the one with the
lowest RTT) puts the whole read on one worker process: its disk, its event
loop, its half of the gRPC data path, while the other replicas idle. A
download instead *stripes* its chunks over the healthy replicas: consecutive
chunks start at consecutive replicas, so a file on three workers is read
from all three at once and read-ahead keeps each of them busy.

Only healthy replicas take part: alive, not lagging behind a hedged read,
and not far slower than the fastest one (the reader decides, see
:mod:`echofs.master.download`). The others keep their places after them in
the read order, so failover and hedging try every replica as before. The rotation is
over the replicas sorted by id, not by RTT: RTT estimates move with every
call, and a rotation over a moving order would send neighbouring chunks to
the same worker.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence


def stripe_base(file_id: str, version: int) -> int:
    """Where a version's stripe starts: a stable number per version, so the
    first chunks of different files (most small files are one chunk) do not
    all start at the same replica."""
    return zlib.crc32(f"{file_id}/{version}".encode())


def striped_order(order: Sequence[str], stripe: int,
                  healthy: Callable[[str], bool]) -> list[str]:
    """``order`` (replicas best first) with its healthy replicas rotated to
    start at ``stripe`` modulo their number, the others after them in their
    order."""
    lead = sorted(w for w in order if healthy(w))
    if len(lead) < 2:
        return list(order)
    start = stripe % len(lead)
    chosen = set(lead)
    return lead[start:] + lead[:start] + [w for w in order if w not in chosen]
