"""What a worker reports about itself in every heartbeat.

Workers produce it, masters keep the latest one per worker and the gRPC layer
carries it between them; it lives here, below all three, so none of them has
to import another role to name it.
"""

from __future__ import annotations

from dataclasses import dataclass

from echofs.core.space import SpaceState, space_state


@dataclass(frozen=True, slots=True)
class StoreUsage:
    """What a store holds. ``capacity_bytes`` 0 means the store has no fixed
    size to report (object stores); ``free_bytes`` is then 0 too.
    ``reserve_bytes``: free space the store keeps back and never fills with
    chunks (see :mod:`echofs.core.space`)."""

    chunk_count: int
    bytes_stored: int
    capacity_bytes: int
    free_bytes: int
    reserve_bytes: int = 0

    @property
    def space(self) -> SpaceState:
        return space_state(free=self.free_bytes, total=self.capacity_bytes,
                           reserve=self.reserve_bytes)


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    worker_id: str
    store: str
    usage: StoreUsage
    inflight: int
    started_at: float
