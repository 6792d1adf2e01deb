"""State metrics read from the live roles when ``/metrics`` is scraped.

Queue depth, worker liveness and store contents are facts about *now*; reading
them at scrape time (instead of copying them into gauges as they change) means
they are never stale, and a role that stopped simply stops contributing.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping
from typing import Protocol

from echofs.core.vocabulary import Liveness
from echofs.core.worker_status import WorkerStatus
from echofs.observability import metrics
from echofs.observability.metrics import Sample

# Every liveness state the registry reports, so a count of 0 is a sample too.
_LIVENESS = (Liveness.ALIVE, Liveness.SUSPECT, Liveness.DEAD)


# What a master's samples are read from, named by what is read, so that
# observability does not depend on the master's modules (the master role
# satisfies this as it is).
class _Backlog(Protocol):
    async def replication_backlog(self) -> tuple[int, float | None]: ...


class _Convergence(Protocol):
    @property
    def last_convergence(self) -> float | None: ...


class _Workers(Protocol):
    def snapshot(self) -> list[dict[str, object]]: ...


class MasterState(Protocol):
    @property
    def repo(self) -> _Backlog: ...

    @property
    def replicator(self) -> _Convergence: ...

    @property
    def registry(self) -> _Workers: ...


async def master_samples(master: MasterState) -> list[Sample]:
    depth, oldest = await master.repo.replication_backlog()
    samples: list[Sample] = [
        ("echofs_replication_queue_depth", (), float(depth)),
        ("echofs_replication_queue_oldest_age_seconds", (),
         max(time.time() - oldest, 0.0) if oldest else 0.0),
    ]
    if master.replicator.last_convergence is not None:
        samples.append(("echofs_replication_last_convergence_seconds", (),
                        master.replicator.last_convergence))
    rows = master.registry.snapshot()
    states = Counter(str(row["state"]) for row in rows)
    samples += [("echofs_workers", (state,), float(states.get(state, 0)))
                for state in _LIVENESS]
    for row in rows:
        worker = (str(row["id"]),)
        up = row["state"] == Liveness.ALIVE
        samples.append(("echofs_worker_up", worker, 1.0 if up else 0.0))
        samples.append(("echofs_worker_heartbeat_age_seconds", worker,
                        float(row["seconds_since_heartbeat"])))  # type: ignore[arg-type]
        for family, key in (("echofs_worker_capacity_bytes", "capacity_bytes"),
                            ("echofs_worker_free_bytes", "free_bytes"),
                            ("echofs_worker_stored_bytes", "bytes_stored"),
                            ("echofs_worker_chunks", "chunk_count")):
            value = row[key]
            if value is not None:  # no heartbeat yet: unknown, not zero
                samples.append((family, worker, float(value)))  # type: ignore[arg-type]
    return samples


# What a worker's and the controller's samples are read from (the worker
# service and the controller service satisfy these as they are).
class WorkerState(Protocol):
    @property
    def worker_id(self) -> str: ...

    async def status(self) -> WorkerStatus: ...


class ControllerState(Protocol):
    @property
    def last_signals(self) -> Mapping[str, object]: ...

    def status(self) -> Mapping[str, object]: ...


async def worker_samples(service: WorkerState) -> list[Sample]:
    status = await service.status()
    worker = (service.worker_id,)
    return [
        ("echofs_store_chunks", worker, float(status.usage.chunk_count)),
        ("echofs_store_bytes", worker, float(status.usage.bytes_stored)),
        ("echofs_store_inflight_operations", worker, float(status.inflight)),
    ]


async def controller_samples(controller: ControllerState) -> list[Sample]:
    # Counts per mode (never per file): the status the controller reports.
    modes = controller.status()["modes"]
    assert isinstance(modes, dict)
    samples: list[Sample] = [("echofs_files_by_mode", (str(mode),), float(count))
                             for mode, count in sorted(modes.items())]
    risk = controller.last_signals.get("cluster_partition_risk")
    if risk is not None:  # unknown until the first sample
        samples.append(("echofs_partition_risk", (), float(risk)))  # type: ignore[arg-type]
    return samples


def track_master(master: MasterState) -> None:
    metrics.track(master, master_samples)


def track_worker(service: WorkerState) -> None:
    metrics.track(service, worker_samples)


def track_controller(controller: ControllerState) -> None:
    metrics.track_controller(controller, controller_samples)
