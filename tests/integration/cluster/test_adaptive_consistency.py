"""The adaptive consistency controller on a real process cluster: a master,
three workers and a controller, each its own process.

Faults are worker crashes (kill -9): an unreachable worker, as far as the
master can tell. Timing bound from the issue: affected files change mode
within (confirm samples x sample interval) + 1 s of the crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time

import pytest

from echofs.testing.cluster import FAST_ENV, ProcessCluster
from echofs.testing.http import download, error_of, put_raw
from echofs.testing.waiting import eventually

MIB = 1024 * 1024
INTERVAL = float(FAST_ENV["SAMPLE_INTERVAL"])
CONFIRM = int(FAST_ENV["CONFIRM_SAMPLES"])


@pytest.fixture
def cluster(tmp_path):
    with ProcessCluster(tmp_path, controller=True) as c:
        yield c




async def mode_of(http, file_id: str) -> str:
    async with http.get("/api/v1/consistency/mode", params={"object_id": file_id}) as resp:
        assert resp.status == 200, await resp.text()
        return (await resp.json())["mode"]


async def consistency(http, method: str, path: str, **body) -> dict:
    async with http.request(method, f"/api/v1/consistency/{path}", json=body or None) as resp:
        payload = await resp.json()
        assert resp.status == 200, payload
        return payload


async def test_one_unreachable_worker_moves_files_to_available_and_back(cluster, http):
    first = await put_raw(http, "busy.bin", os.urandom(MIB // 2))
    file_id = first["file_id"]
    results: list[int] = []
    stop = asyncio.Event()

    async def writer() -> None:
        while not stop.is_set():
            async with http.put("/api/v1/files/content/busy.bin",
                                data=os.urandom(MIB // 2)) as resp:
                results.append(resp.status)
            await asyncio.sleep(0.1)

    task = asyncio.create_task(writer())
    try:
        await asyncio.sleep(1.5)
        assert await mode_of(http, file_id) == "strong"
        cluster.kill_worker("w3")
        killed = time.monotonic()

        async def available() -> bool:
            return await mode_of(http, file_id) == "available"

        bound = CONFIRM * INTERVAL + 1.0
        await eventually(available, bound, "file in available mode after a worker crash")
        switched = time.monotonic() - killed
        await asyncio.sleep(1.0)
        cluster.start_worker("w3")

        async def strong_and_drained() -> bool:
            async with http.get("/api/v1/health") as resp:
                depth = (await resp.json())["replication_queue"]["depth"]
            return await mode_of(http, file_id) == "strong" and depth == 0

        stop.set()
        await task
        await eventually(strong_and_drained, 30, "back to strong with an empty queue")
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await task
    assert results and all(status == 201 for status in results), results
    print(f"switched to available {switched:.2f}s after the crash (bound {bound:.1f}s)")
    transitions = (await consistency(http, "GET", f"transitions?object_id={file_id}"))[
        "transitions"]
    steps = [(t["from"], t["to"], t["reason"]) for t in reversed(transitions)]
    assert steps[0] == ("strong", "available", "emergency"), steps
    assert steps[-1][1] == "strong" and steps[-1][2] == "policy", steps
    assert all(t["signals"] for t in transitions)


async def test_two_targets_down_strong_and_critical_fail_auto_succeeds(cluster, http):
    hinted = (await put_raw(http, "hinted.bin", b"v1"))["file_id"]
    critical = (await put_raw(http, "critical.bin", b"v1"))["file_id"]
    auto = (await put_raw(http, "auto.bin", b"v1"))["file_id"]
    await consistency(http, "POST", "hint", object_id=hinted, hint="strong")
    await consistency(http, "POST", "critical-keys", keys=[critical])
    cluster.kill_worker("w2")
    cluster.kill_worker("w3")

    async def auto_available() -> bool:
        return await mode_of(http, auto) == "available"

    await eventually(auto_available, 15, "auto file switched to available")
    for name in ("hinted.bin", "critical.bin"):
        async with http.put(f"/api/v1/files/content/{name}", data=b"v2") as resp:
            assert resp.status == 503, name
            assert (await error_of(resp))["code"] == "quorum_not_reached"
    new_bytes = os.urandom(3 * MIB)
    async with http.put("/api/v1/files/content/auto.bin", data=new_bytes) as resp:
        body = await resp.json()
        assert resp.status == 201, body
        assert resp.headers["X-EchoFS-Mode"] == "available" and body["mode"] == "available"
    cluster.start_worker("w2")
    cluster.start_worker("w3")
    cluster.wait_for_workers(3)

    async def drained() -> bool:
        async with http.get("/api/v1/health") as resp:
            return (await resp.json())["replication_queue"]["depth"] == 0

    await eventually(drained, 30, "handoff copies delivered")
    assert await download(http, auto) == new_bytes
    assert await download(http, hinted) == b"v1"


async def test_controller_crash_changes_nothing_and_state_survives(cluster, http):
    one = (await put_raw(http, "one.bin", b"one"))["file_id"]
    two = (await put_raw(http, "two.bin", b"two"))["file_id"]
    await consistency(http, "POST", "hint", object_id=one, hint="available")
    await consistency(http, "POST", "critical-keys", keys=[two])
    await consistency(http, "POST", "override", mode="hybrid")
    before = {
        "one": await mode_of(http, one), "two": await mode_of(http, two),
        "critical": (await consistency(http, "GET", "critical-keys"))["keys"],
        "status": (await consistency(http, "GET", "status"))["override"],
    }
    assert before == {"one": "hybrid", "two": "strong", "critical": [two], "status": "hybrid"}
    cluster.kill_controller()
    # Reads and writes go on with the last known modes.
    for i in range(5):
        body = await put_raw(http, "one.bin", f"one {i}".encode())
        assert body["mode"] == "hybrid"
        assert await download(http, one) == f"one {i}".encode()
    async with http.get("/api/v1/consistency/status") as resp:
        assert resp.status == 503  # the proxy says so instead of hanging
    cluster.start_controller()
    after = {
        "one": await mode_of(http, one), "two": await mode_of(http, two),
        "critical": (await consistency(http, "GET", "critical-keys"))["keys"],
        "status": (await consistency(http, "GET", "status"))["override"],
    }
    assert after == before
    await consistency(http, "DELETE", "override")
    assert await mode_of(http, one) == "available"  # the hint applies again
