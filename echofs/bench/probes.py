"""What the chaos benchmark asks of the master over REST, besides the workload:
set a policy's override, wait for the cluster to settle or to converge after a
heal, and read the controller's mode transitions back from its audit log.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import aiohttp

from echofs.bench.scenarios import OVERRIDE, WORKERS
from echofs.bench.summary import rounded
from echofs.core.vocabulary import Liveness

_POLL = 0.1  # seconds between health polls while measuring convergence


async def get_json(http: aiohttp.ClientSession, path: str) -> dict[str, Any]:
    # The master answers its health with 503 (and the same JSON) when too few
    # workers are alive: still an answer.
    async with http.get(path) as resp:
        return await resp.json(content_type=None)


async def _expect_ok(resp: aiohttp.ClientResponse) -> None:
    if resp.status != 200:
        raise RuntimeError(f"{resp.method} {resp.url.path}: {resp.status} {await resp.text()}")


async def set_policy(http: aiohttp.ClientSession, policy: str, default_mode: str) -> None:
    """Set the override for ``policy`` and wait until the master applies it."""
    mode = OVERRIDE[policy]
    if mode is None:
        async with http.delete("/api/v1/consistency/override") as resp:
            await _expect_ok(resp)
    else:
        async with http.post("/api/v1/consistency/override", json={"mode": mode}) as resp:
            await _expect_ok(resp)
    expected = mode or default_mode
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        health = await get_json(http, "/api/v1/health")
        if health["consistency"]["default_mode"] == expected:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError(f"the master did not apply policy {policy} within 15 s")


async def _cluster_state(http: aiohttp.ClientSession) -> tuple[dict[str, str], int, float | None]:
    workers = await get_json(http, "/api/v1/workers/health")
    health = await get_json(http, "/api/v1/health")
    queue = health["replication_queue"]
    return ({w["id"]: w["state"] for w in workers["workers"]}, int(queue["depth"]),
            queue["oldest_age_seconds"])


async def _workers_detail(http: aiohttp.ClientSession) -> dict[str, Any]:
    """What the master thinks of each worker (evidence when a heal does not
    converge)."""
    with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError, ValueError):
        rows = (await get_json(http, "/api/v1/workers/health"))["workers"]
        return {w["id"]: {k: w.get(k) for k in ("state", "seconds_since_heartbeat", "calls",
                                                 "failures", "rtt_ms")} for w in rows}
    return {}


async def measure_convergence(http: aiohttp.ClientSession, since: float,
                              workers: Iterable[str], within: float) -> dict[str, Any]:
    """Seconds from ``since`` (wall clock: a heal, or the end of the load)
    until the cluster is whole again: the named workers alive as the master
    sees them, and every replication task that existed at ``since`` done."""
    workers = list(workers)
    depth_at_start: int | None = None
    alive_after: float | None = None
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            states, depth, oldest_age = await _cluster_state(http)
        except (aiohttp.ClientError, TimeoutError, KeyError, ValueError):
            await asyncio.sleep(_POLL)
            continue
        now = time.time()
        if depth_at_start is None:
            depth_at_start = depth
        alive = all(states.get(w) == Liveness.ALIVE for w in workers)
        if alive and alive_after is None:
            alive_after = now - since
        # Tasks are removed when done and keep their creation time when
        # retried: the oldest one younger than `since` means the backlog of
        # that moment is gone.
        backlog_gone = depth == 0 or (oldest_age is not None and now - oldest_age > since)
        if alive and backlog_gone:
            return {"seconds": round(now - since, 3), "workers_alive_after":
                    round(alive_after if alive_after is not None else now - since, 3),
                    "queue_depth_at_start": depth_at_start}
        await asyncio.sleep(_POLL)
    health = await get_json(http, "/api/v1/health")
    return {"seconds": None, "workers_alive_after": rounded(alive_after, 3),
            "queue_depth_at_start": depth_at_start,
            "queue_depth_at_end": health["replication_queue"]["depth"],
            "oldest_task_age_at_end": health["replication_queue"]["oldest_age_seconds"],
            "workers_at_end": await _workers_detail(http)}


async def settle(http: aiohttp.ClientSession, within: float) -> bool:
    """Wait until every worker is alive and the replication queue is empty."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, KeyError, ValueError):
            states, depth, _ = await _cluster_state(http)
            if len(states) == WORKERS and all(s == Liveness.ALIVE for s in states.values()) \
                    and depth == 0:
                return True
        await asyncio.sleep(_POLL)
    return False


async def fetch_transitions(http: aiohttp.ClientSession, file_ids: set[str],
                            since: float) -> list[dict[str, Any]]:
    """Mode transitions of these files at or after ``since`` (wall clock),
    oldest first, paging back through the audit log."""
    found: list[dict[str, Any]] = []
    before: int | None = None
    while True:
        params = {"limit": "1000", **({"before": str(before)} if before is not None else {})}
        async with http.get("/api/v1/consistency/transitions", params=params) as resp:
            await _expect_ok(resp)
            rows = (await resp.json())["transitions"]
        for row in rows:
            at = datetime.fromisoformat(row["at"]).timestamp()
            if at >= since and row["object_id"] in file_ids:
                found.append({**row, "at_wall": at})
        if len(rows) < 1000 or not rows:
            break
        if datetime.fromisoformat(rows[-1]["at"]).timestamp() < since:
            break
        before = min(int(r["id"]) for r in rows)
    return sorted(found, key=lambda r: r["at_wall"])
