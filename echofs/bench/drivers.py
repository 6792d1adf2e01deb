"""The chaos scenarios that are more than one fault and its heal.

Each driver runs a :class:`~echofs.bench.cell.Cell`'s phases while its
workload runs, and leaves what it measured beyond the common figures in
``cell.extra`` (the cell's ``scenario_detail`` in the JSON):

- :func:`flapping` — the link to two workers cut and healed every
  ``flap_period`` seconds for ``flapping`` seconds: how many times the link
  flipped, and (in the cell) how many mode switches the controller made.
- :func:`master_kill` — a partition, the master killed with SIGKILL in its
  middle and started again on the same data: how long it was down, the
  replication queue it left and found, and when its mode table again
  matched the controller's.
- :func:`worker_lost` — a worker killed and its data folder wiped under
  load, started again empty: how long until every copy it held is back at
  RF (:mod:`echofs.bench.redundancy`).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import time
from typing import TYPE_CHECKING, Any

import aiohttp

from echofs.bench import redundancy
from echofs.bench.probes import get_json, measure_convergence
from echofs.bench.scenarios import FAULTED, LOST_WORKER, PARTITION_FAULT
from echofs.bench.workload import Workload
from echofs.testing.fault_control import FaultControl
from echofs.testing.proxied_cluster import ProxiedCluster

if TYPE_CHECKING:
    from echofs.bench.cell import Cell

_POLL = 0.1


async def flapping(cell: Cell, http: aiohttp.ClientSession, control: FaultControl,
                   workload: Workload) -> None:
    p = cell.profile
    names = ProxiedCluster.proxy_names(FAULTED)
    await cell._phase(workload, "warmup", p.warmup)
    cell.begin_phase(workload, "fault")
    loop = asyncio.get_running_loop()
    end = loop.time() + p.flapping
    flips, cut = 0, True
    while (left := end - loop.time()) > 0:
        if cut:
            await control.set(dict.fromkeys(names, PARTITION_FAULT))
        else:
            await control.heal(names)
        flips += 1
        cut = not cut
        await asyncio.sleep(min(p.flap_period, left))
    await control.heal(names)
    healed = time.time()
    measuring = asyncio.create_task(measure_convergence(http, healed, FAULTED,
                                                        p.settle_timeout))
    await cell._phase(workload, "recovery", p.recovery)
    cell.convergence.append(await measuring)
    cell.extra.update({"link_flips": flips, "flap_period_s": p.flap_period,
                       "flapping_s": p.flapping})


async def _consistency_state(http: aiohttp.ClientSession) -> dict[str, Any]:
    health = await get_json(http, "/api/v1/health")
    return {"queue_depth": health["replication_queue"]["depth"],
            "default_mode": health["consistency"]["default_mode"],
            "modes": {k: v for k, v in health["consistency"]["modes"].items() if v},
            "controller_connected": health["consistency"]["controller_connected"]}


async def _controller_modes(http: aiohttp.ClientSession) -> dict[str, int]:
    status = await get_json(http, "/api/v1/consistency/status")
    return {k: v for k, v in status["modes"].items() if v}


async def master_kill(cell: Cell, http: aiohttp.ClientSession, cluster: ProxiedCluster,
                      control: FaultControl, workload: Workload) -> None:
    p = cell.profile
    names = ProxiedCluster.proxy_names(FAULTED)
    await cell._phase(workload, "warmup", p.warmup)
    cell.begin_phase(workload, "fault")
    await control.set(dict.fromkeys(names, PARTITION_FAULT))
    fault_began = time.monotonic()
    await asyncio.sleep(p.fault / 2)
    before = await _consistency_state(http)
    killed, killed_at = time.monotonic(), workload.now()
    await asyncio.to_thread(cluster.kill_master)
    await asyncio.to_thread(cluster.start_master)  # same ports, same data folder
    up, up_at = time.monotonic(), workload.now()
    # Recovered: the controller's table streamed to the new master again,
    # and its replication queue read back from the metadata store.
    after: dict[str, Any] = {}
    modes_after: float | None = None
    deadline = up + p.settle_timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError, ValueError):
            after = await _consistency_state(http)
            controller = await _controller_modes(http)
            if after["controller_connected"] and after["modes"] == controller:
                modes_after = time.monotonic() - up
                after["controller_modes"] = controller
                break
        await asyncio.sleep(_POLL)
    await asyncio.sleep(max(0.0, p.fault - (time.monotonic() - fault_began)))
    await control.heal(names)
    healed = time.time()
    measuring = asyncio.create_task(measure_convergence(http, healed, FAULTED,
                                                        p.settle_timeout))
    await cell._phase(workload, "recovery", p.recovery)
    cell.convergence.append(await measuring)
    cell.extra.update({
        "killed_after_fault_start_s": round(killed - fault_began, 3),
        "master_down_s": round(up - killed, 3),
        # On the workload's clock: operations begun then met no master at all.
        "down_window": [round(killed_at, 3), round(up_at, 3)],
        "before_kill": before, "after_restart": after,
        "modes_recovered_after_s": None if modes_after is None else round(modes_after, 3),
        "modes_recovered": modes_after is not None
        and after.get("default_mode") == before["default_mode"],
    })


async def worker_lost(cell: Cell, cluster: ProxiedCluster, workload: Workload) -> None:
    p = cell.profile
    cell.begin_phase(workload, "run")
    await asyncio.sleep(p.warmup)
    lost = await cluster.chunks_on(LOST_WORKER)
    await asyncio.to_thread(cluster.kill_worker, LOST_WORKER)
    lost_at = time.time()
    # Its disk is gone: the store and everything else in its folders.
    await asyncio.to_thread(shutil.rmtree, cluster.store_dir(LOST_WORKER), True)
    await asyncio.to_thread(shutil.rmtree, cluster.workers[LOST_WORKER].data_dir, True)
    await asyncio.to_thread(cluster.start_worker, LOST_WORKER)  # a new, empty disk
    restarted = time.time() - lost_at
    loop = asyncio.get_running_loop()
    give_up_at = loop.time() + p.worker_lost + p.settle_timeout
    watching = asyncio.create_task(redundancy.watch(
        lost, sorted(cluster.workers), cluster.chunks_on, since=lost_at,
        replication_factor=cluster.replication_factor,
        until=lambda: loop.time() >= give_up_at))
    await asyncio.sleep(p.worker_lost)
    cell.phases[-1].ended = workload.now()
    # The load stops now (the cell's caller stops it); the watch goes on
    # until every lost copy is back or the settle timeout passes.
    cell.extra.update({"lost_worker": LOST_WORKER, "restarted_empty_after_s":
                       round(restarted, 3), "watch": watching})


async def finish_worker_lost(cell: Cell) -> None:
    """Wait for worker-lost's redundancy watch (after the load stopped)."""
    watching = cell.extra.pop("watch", None)
    if watching is None:
        return
    result: redundancy.Redundancy = await watching
    cell.extra["redundancy"] = result.to_json()
    cell.extra["rf_restored"] = result.seconds is not None
    # Its convergence: from the loss until every lost copy is back at RF.
    cell.convergence.append({
        "seconds": None if result.seconds is None else round(result.seconds, 3),
        "workers_alive_after": cell.extra["restarted_empty_after_s"],
        "queue_depth_at_start": None, "lost_chunks_short_at_end": result.short})
