"""The write pipeline in a real multi-process cluster (master + 3 workers,
RF=3): a large chunk leaves the master once and the workers relay it; a
worker killed or frozen in the middle of a stream of uploads, or one that
refuses the copy for want of space, costs no acknowledged upload, and every
chunk is back at RF=3 once the fault is gone."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import aiohttp
import pytest

from echofs.core.placement import place
from echofs.testing import small_disk
from echofs.testing.cluster import ProcessCluster
from echofs.testing.http import download_digest, pattern_digest, pattern_stream
from echofs.testing.metrics import scrape
from echofs.testing.waiting import eventually

MIB = 1024 * 1024
# Short hop deadlines: a frozen worker is cut out of a chain in a second. A
# cluster token: workers relaying to each other must present it too.
PIPELINE_ENV = {"CHAIN_HOP_TIMEOUT": "0.5", "CLUSTER_TOKEN": "pipeline-test-token"}
SENT = "echofs_master_chunk_bytes_sent_total"


async def _upload(http: aiohttp.ClientSession, name: str, size: int, seed: int
                  ) -> dict | None:
    """A pattern upload (its seed keeps it apart from the others: no dedup);
    the file if acknowledged, None if refused (a refusal is allowed during a
    fault, a lost acknowledged upload is not)."""
    try:
        async with http.put(f"/api/v1/files/content/{name}",
                            data=pattern_stream(size, seed=seed)) as resp:
            body = await resp.json()
    except aiohttp.ClientError:
        return None
    if resp.status != 201:
        assert resp.status in (503, 507), body  # refused cleanly, never a 500
        return None
    return {**body, "seed": seed}


async def _upload_stream(http: aiohttp.ClientSession, count: int, size: int, *,
                         fault_at: int, fault) -> list[dict]:  # type: ignore[no-untyped-def]
    """``count`` uploads, two at a time; ``fault`` runs once ``fault_at`` of
    them were acknowledged, while the others are on their way."""
    acknowledged: list[dict] = []
    queue = list(range(count))

    async def client() -> None:
        nonlocal fault
        while queue:
            seed = queue.pop(0)
            body = await _upload(http, f"stream-{seed}.bin", size, seed)
            if body is not None:
                acknowledged.append(body)
            if fault is not None and len(acknowledged) >= fault_at:
                fault, run = None, fault
                run()

    await asyncio.gather(client(), client())
    return acknowledged


async def _all_read_back_exact(http: aiohttp.ClientSession, files: list[dict]) -> None:
    for body in files:
        size = body["size"]
        assert await download_digest(http, body["file_id"]) == (
            size, pattern_digest(size, seed=body["seed"])), body["file_id"]


async def _chunk_ids(http: aiohttp.ClientSession, files: list[dict]) -> set[str]:
    ids: set[str] = set()
    for body in files:
        async with http.get(f"/api/v1/files/{body['file_id']}") as resp:
            ids |= {c["chunk_id"] for c in (await resp.json())["chunk_list"]}
    return ids


async def _back_at_rf(cluster: ProcessCluster, chunk_ids: set[str], within: float) -> None:
    async def everywhere() -> bool:
        held = [await cluster.chunks_on(w) for w in cluster.workers]
        return all(chunk_ids <= h for h in held)

    await eventually(everywhere, within, "every acknowledged chunk on all three workers")


async def _sent(cluster: ProcessCluster) -> dict[str, float]:
    metrics = await scrape(f"{cluster.url}/metrics")
    return {path: metrics.value(SENT, path=path) or 0.0 for path in ("direct", "chain")}


@pytest.fixture
def cluster(tmp_path):
    with ProcessCluster(tmp_path, env=PIPELINE_ENV) as c:
        yield c




async def test_a_large_upload_leaves_the_master_about_once(cluster, http):
    size = 16 * MIB
    before = await _sent(cluster)
    body = await _upload(http, "big.bin", size, seed=1)
    assert body is not None
    after = await _sent(cluster)
    chain = after["chain"] - before["chain"]
    direct = after["direct"] - before["direct"]
    # Fan-out sent each chunk three times (3 MiB per MiB); the pipeline once.
    assert chain + direct <= 1.1 * size, (chain, direct)
    assert chain >= size  # every chunk went down a chain (frames carry a header)
    await _all_read_back_exact(http, [body])
    await _back_at_rf(cluster, await _chunk_ids(http, [body]), 20)


async def test_a_worker_killed_in_the_middle_of_a_pipeline(cluster, http):
    files = await _upload_stream(http, 10, 4 * MIB, fault_at=3,
                                 fault=lambda: cluster.kill_worker("w2"))
    assert not cluster.workers["w2"].running
    assert len(files) >= 8  # refusals only while the master learnt of the crash
    await _all_read_back_exact(http, files)
    cluster.start_worker("w2")
    await _back_at_rf(cluster, await _chunk_ids(http, files), 60)


async def test_a_worker_frozen_in_the_middle_of_a_pipeline(cluster, http):
    pid = cluster.workers["w2"].proc.pid
    try:
        files = await _upload_stream(http, 10, 4 * MIB, fault_at=3,
                                     fault=lambda: os.kill(pid, signal.SIGSTOP))
    finally:
        os.kill(pid, signal.SIGCONT)
    assert len(files) >= 8
    await _all_read_back_exact(http, files)
    await _back_at_rf(cluster, await _chunk_ids(http, files), 60)


async def test_the_last_worker_of_a_chain_refusing_for_want_of_space(tmp_path):
    # w3's store has a small disk of its own, filled to just above its reserve:
    # not full as its heartbeat reports it (placement keeps it a target, so it
    # is in every chain), but a 4 MiB chunk would eat into the reserve.
    try:
        with small_disk.small_filesystem(tmp_path / "w3-disk", "64m") as disk:
            def store(worker_id: str) -> str:
                where = disk / "store" if worker_id == "w3" else tmp_path / "stores" / worker_id
                return f"local:{where}"

            env = {**PIPELINE_ENV, "CHUNK_SIZE": str(4 * MIB),
                   "STORE_RESERVE_BYTES": str(4 * MIB), "STORE_RESERVE_PERCENT": "0"}
            with ProcessCluster(tmp_path / "cluster", env=env, stores=store) as cluster:
                await _refused_by_the_last_hop(cluster, disk)
    except small_disk.SmallDiskUnavailable as exc:
        pytest.skip(str(exc))


async def _refused_by_the_last_hop(cluster: ProcessCluster, disk: Path) -> None:
    stats = os.statvfs(disk)
    free = stats.f_bavail * stats.f_frsize
    ballast = disk / "ballast"
    ballast.write_bytes(b"\0" * (free - 4 * MIB - 3 * MIB))  # reserve + 3 MiB left

    async def w3_low_not_full() -> bool:
        return cluster.workers_health()["w3"]["space"] == "low"

    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(base_url=cluster.url, timeout=timeout) as http:
        await eventually(w3_low_not_full, 10, "w3 reported short of room, not full")
        files = [await _upload(http, f"f{seed}.bin", 16 * MIB, seed) for seed in range(3)]
        assert all(files), files  # two copies of each chunk: quorum, acknowledged
        chunk_ids = await _chunk_ids(http, files)  # type: ignore[arg-type]
        assert not chunk_ids & await cluster.chunks_on("w3")
        last_in_chain = [c for c in chunk_ids if place(c, ["w1", "w2", "w3"], 3)[-1] == "w3"]
        assert last_in_chain, "no chunk had w3 as the last hop of its chain"
        await _all_read_back_exact(http, files)  # type: ignore[arg-type]
        ballast.unlink()  # room made
        await _back_at_rf(cluster, chunk_ids, 60)
