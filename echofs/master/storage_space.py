"""How much room the cluster has left, as one master sees it: each worker's
store (from its heartbeats) and the disk of the SQLite metadata file.

The collector asks :meth:`StorageSpace.short` to decide whether deleted data
is given back early; health reports which stores are full.
"""

from __future__ import annotations

from dataclasses import dataclass

from echofs.core.space import SpaceState
from echofs.master.membership import WorkerRegistry
from echofs.metadata.disk_space import MetadataDisk

_SHORT = (SpaceState.LOW, SpaceState.FULL)


@dataclass(frozen=True, slots=True)
class StorageSpace:
    registry: WorkerRegistry
    metadata: MetadataDisk

    def short(self) -> bool:
        """Is a worker's store or the metadata disk low on space (or full)?"""
        return self.registry.short_of_space() or self.metadata.state() in _SHORT
