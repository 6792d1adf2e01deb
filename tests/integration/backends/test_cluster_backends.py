"""The same cluster story on the embedded backends and on the production ones.

Embedded: one master, SQLite, local folders, in-process cache. Production: two
masters sharing one PostgreSQL database and Redis, three workers on S3
(moto). Every step is written through one master and checked through the
other (with one master, both are the same), and must come out the same:
upload, download, overwrite, old versions, delete, a worker killed with
SIGKILL and back, garbage collected from the stores.
"""

from __future__ import annotations

import json
import random
import urllib.request
from contextlib import AsyncExitStack

import aiohttp
import blake3
import pytest

from echofs.testing.cluster import ProcessCluster
from echofs.testing.http import download, error_of, put_raw
from echofs.testing.waiting import eventually

from .conftest import assert_no_errors_logged

MIB = 1024 * 1024


def payload(seed: int, size: int) -> bytes:
    return random.Random(seed).randbytes(size)


async def chunk_ids(http: aiohttp.ClientSession, file_id: str) -> set[str]:
    async with http.get(f"/api/v1/files/{file_id}") as resp:
        assert resp.status == 200
        return {c["chunk_id"] for c in (await resp.json())["chunk_list"]}


def health(url: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(f"{url}/api/v1/health", timeout=5) as resp:
        return json.load(resp)


async def the_story(cluster: ProcessCluster) -> None:
    async with AsyncExitStack() as stack:
        a, b = [await stack.enter_async_context(aiohttp.ClientSession(base_url=url))
                for url in (cluster.urls[0], cluster.urls[-1])]
        first, second = payload(1, 3 * MIB + 12345), payload(2, 2 * MIB + 77)

        # Upload through one master; the other serves it at once (strong).
        body = await put_raw(a, "docs/report.bin", first)
        file_id = body["file_id"]
        assert (body["version"], body["size"], body["chunks"]) == (1, len(first), 4)
        assert body["blake3"] == blake3.blake3(first).hexdigest()
        assert await download(b, file_id) == first
        async with b.get(f"/api/v1/files/{file_id}") as resp:
            stat = await resp.json()
        assert (stat["version"], stat["current_version"], len(stat["chunk_list"])) == (1, 1, 4)
        assert all(len(c["replicas"]) == 3 for c in stat["chunk_list"])
        first_chunks = {c["chunk_id"] for c in stat["chunk_list"]}

        # Overwrite through the other; the first master sees version 2 at once.
        body = await put_raw(b, "docs/report.bin", second)
        assert (body["file_id"], body["version"]) == (file_id, 2)
        async with a.get(f"/api/v1/files/{file_id}/download") as resp:
            assert resp.headers["X-EchoFS-Version"] == "2"
            assert await resp.read() == second
        async with a.get(f"/api/v1/files/{file_id}/versions") as resp:
            assert [v["version"] for v in (await resp.json())["versions"]] == [2, 1]
        assert await download(b, file_id, version=1) == first
        async with b.get("/api/v1/files") as resp:
            listing = await resp.json()
        assert [(f["path"], f["version"], f["size"]) for f in listing["files"]] == [
            ("docs/report.bin", 2, len(second))]

        # Delete through one; gone through the other at once.
        async with a.delete(f"/api/v1/files/{file_id}") as resp:
            assert resp.status == 200
            assert (await resp.json())["deleted_versions"] == 2
        for http in (a, b):
            async with http.get(f"/api/v1/files/{file_id}/download") as resp:
                assert resp.status == 404
                assert (await error_of(resp))["code"] == "not_found"

        # A worker killed with SIGKILL: writes still reach quorum, reads work,
        # and once it is back it is given the copies it missed.
        cluster.kill_worker("w2")
        third = payload(3, 2 * MIB + 5)
        body = await put_raw(b, "after-kill.bin", third)
        assert body["version"] == 1
        assert await download(a, body["file_id"]) == third
        survivor_chunks = await chunk_ids(a, body["file_id"])
        cluster.start_worker("w2")

        async def back_at_rf() -> bool:
            return all([survivor_chunks <= await cluster.chunks_on(w) for w in cluster.workers])

        await eventually(back_at_rf, 30, "w2 given the copies it missed")

        # The deleted file's chunks are collected from every store.
        async def collected() -> bool:
            held = set().union(*[await cluster.chunks_on(w) for w in cluster.workers])
            return not (held & first_chunks) and survivor_chunks <= held

        await eventually(collected, 30, "the deleted file's chunks removed from every worker")

    # Reads were served from memory at least once: the manifest cache, or the
    # read memo of the sole master of an SQLite store.
    caches = [health(url)["cache"] for url in cluster.urls]
    hits = sum(c["manifest_hits"] + (c["read_memo"] or {"hits": 0})["hits"] for c in caches)
    assert hits >= 1
    assert_no_errors_logged(cluster)


@pytest.mark.parametrize("backends", ["embedded", "production"])
async def test_same_story_on_embedded_and_production_backends(
        request: pytest.FixtureRequest, tmp_path, backends: str) -> None:
    chosen = request.getfixturevalue(backends)
    masters = 2 if backends == "production" else 1
    # The killed worker comes back as itself: however slow the machine, it
    # must not be declared dead (and its copies re-homed) meanwhile.
    with chosen.cluster(tmp_path, masters=masters, env={"DEAD_AFTER": "60"}) as cluster:
        if backends == "production":
            info = health(cluster.urls[1])
            assert info["cache"]["backend"].startswith("redis")
            workers = cluster.workers_health(master=1)
            assert {w["store"] for w in workers.values()} == {
                chosen.stores(w) + "/" for w in workers}
        await the_story(cluster)
