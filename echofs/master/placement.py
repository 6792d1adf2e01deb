"""Where a chunk's copies belong, given who is up: one object for writers and
the replicator (Swift's ring: ``get_nodes`` / ``get_more_nodes``).

The ranking itself is rendezvous hashing (:mod:`echofs.core.placement`); this
module applies it to the membership with the two rules the master uses:

- :meth:`Placement.write_targets` — a new write goes to the top-RF *live*
  workers; if fewer than RF are live, the missing homes are taken among
  suspect workers (likely back soon), whose copies are then owed rather than
  forgotten. Workers whose stores are full are left out: the write goes
  around them (and is refused as 507 if too few are left).
- :meth:`Placement.homes` — where a chunk should live for the replicator:
  alive and suspect workers ranked together, since a suspect worker still
  owns its placements. Only a dead worker's chunks get new homes.

Both read the registry at the moment they are asked, so every caller sees the
same membership rules and no placement table is kept anywhere.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from echofs.core.placement import place
from echofs.master.membership import WorkerRegistry


@dataclass(frozen=True, slots=True)
class WriteTargets:
    """A new chunk's placement targets and the live workers they were chosen
    among (a write policy needs both: which targets it can reach now)."""

    targets: list[str]
    live: frozenset[str]
    # Workers left out because their stores are full.
    full: frozenset[str] = frozenset()


class Placement:
    def __init__(self, registry: WorkerRegistry, replication_factor: int) -> None:
        self.registry = registry
        self.replication_factor = replication_factor

    def write_targets(self, chunk_id: str) -> WriteTargets:
        """Top-RF live workers with room, topped up from suspect ones."""
        rf = self.replication_factor
        full = frozenset(self.registry.full_ids())
        live_ids = self.registry.live_ids()
        live = frozenset(live_ids)  # full ones too: the copies they hold count
        targets = place(chunk_id, [w for w in live_ids if w not in full], rf)
        if len(targets) < rf:
            absent = [w for w in self.registry.placeable_ids() if w not in live and w not in full]
            targets += place(chunk_id, absent, rf - len(targets))
        return WriteTargets(targets, live, full)

    def homes(self, chunk_id: str) -> list[str]:
        """The chunk's RF homes among alive and suspect workers, ranked together."""
        return place(chunk_id, self.registry.placeable_ids(), self.replication_factor)

    def fastest_first(self, workers: Iterable[str]) -> list[str]:
        """Workers in the order a copy should be tried on them: live ones by
        round-trip time first (where a sloppy write lands off its targets)."""
        return self.registry.read_order(workers)
