"""A full disk, for real: a small file system made for the test, a real
``echofs serve`` on it (chunk stores and the SQLite metadata both), filled
with real uploads until the disk refuses more.

What must hold: uploads are refused with 507 ``insufficient_storage`` before
the disk is actually full (the reserve keeps room for SQLite and the
volumes' tombstones), never a 500; reads and deletes keep working; health
and the workers' health name the full workers (not "suspect"); and the
space deleted files held comes back without waiting out the collector's
one-hour grace period, so uploads work again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from echofs.testing import small_disk
from echofs.testing.cluster import ProcessCluster
from echofs.testing.node import running_node, stored_chunks
from echofs.testing.process import ServeProcess

MIB = 1024 * 1024


@contextlib.contextmanager
def small_filesystem(where: Path, size: str) -> Iterator[Path]:
    try:
        with small_disk.small_filesystem(where, size) as disk:
            yield disk
    except small_disk.SmallDiskUnavailable as exc:
        pytest.skip(str(exc))


def _serve(disk: Path, log_dir: Path, **env: str) -> ServeProcess:
    server = ServeProcess(disk / "data", env={
        "STORE_RESERVE_BYTES": "1m", "STORE_RESERVE_PERCENT": "0",
        "METADATA_RESERVE_BYTES": "1m",
        "HEARTBEAT_INTERVAL": "0.2", "GC_INTERVAL_SECONDS": "0.5",
        "GC_PRESSURE_GRACE_SECONDS": "1", "LOG_LEVEL": "info", **env,
    }, name="disk-full")
    server.log_path = log_dir / "disk-full.log"  # not on the small disk
    return server


async def _health(http: aiohttp.ClientSession) -> dict:
    async with http.get("/api/v1/health") as resp:
        return await resp.json()


async def _workers(http: aiohttp.ClientSession) -> list[dict]:
    async with http.get("/api/v1/workers/health") as resp:
        assert resp.status == 200
        return (await resp.json())["workers"]


async def _fill(http: aiohttp.ClientSession, size: int, limit: int = 200
                ) -> tuple[dict[str, bytes], aiohttp.ClientResponse, dict]:
    """Upload random files until one is refused: the ones stored (id ->
    bytes), and the refusal."""
    stored: dict[str, bytes] = {}
    for n in range(limit):
        body = os.urandom(size)
        async with http.put(f"/api/v1/files/content/fill/{n}.bin", data=body) as resp:
            if resp.status != 201:
                return stored, resp, await resp.json(content_type=None)
            stored[(await resp.json())["file_id"]] = body
    raise AssertionError(f"{limit} uploads of {size} bytes never filled the disk")


def _assert_clean_log(server: ServeProcess) -> None:
    log = server.log_path.read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    assert "database or disk is full" not in log, log[-3000:]


async def test_full_disk_refuses_uploads_with_507_keeps_reads_and_deletes_and_recovers(
        tmp_path):
    with small_filesystem(tmp_path / "disk", "24m") as disk:
        server = _serve(disk, tmp_path).start()
        try:
            async with aiohttp.ClientSession(base_url=server.url) as http:
                stored, refused, error = await _fill(http, 256 * 1024)
                assert refused.status == 507, (refused.status, error)
                assert error["error"]["code"] == "insufficient_storage"
                assert "space" in error["error"]["message"]
                assert len(stored) >= 5
                # The reserve was kept: the disk itself never ran out.
                assert shutil.disk_usage(disk).free >= 512 * 1024

                # Health names the full workers; none of them is "suspect".
                await _wait_for(lambda: _all_full(http), "workers reported full")
                workers = await _workers(http)
                assert {w["state"] for w in workers} == {"alive"}
                assert {w["space"] for w in workers} == {"full"}
                health = await _health(http)
                assert health["status"] == "degraded"
                assert sorted(health["workers"]["full"]) == ["w1", "w2", "w3"]

                # Reads still work.
                for file_id, body in stored.items():
                    async with http.get(f"/api/v1/files/{file_id}/download") as resp:
                        assert resp.status == 200
                        assert await resp.read() == body

                # So do deletes, and the space comes back long before the
                # collector's one-hour grace period would end.
                free_before = shutil.disk_usage(disk).free
                for file_id in stored:
                    async with http.delete(f"/api/v1/files/{file_id}") as resp:
                        assert resp.status == 200, await resp.text()
                await _wait_for(lambda: _upload_works(http), "an upload accepted again",
                                within=20.0)
                assert shutil.disk_usage(disk).free > free_before + 4 * MIB
                workers = await _workers(http)
                assert {w["space"] for w in workers} == {"ok"}
            _assert_clean_log(server)
        finally:
            server.kill()


async def test_worker_processes_on_the_files_store_refuse_with_507_too(tmp_path):
    """The one-file-per-chunk store (``--store files:PATH``) keeps the same
    reserve, and a worker's refusal crosses gRPC as what it is: a master
    and three worker processes, their stores on one small disk."""
    with small_filesystem(tmp_path / "disk", "12m") as disk:
        cluster = ProcessCluster(tmp_path / "cluster", env={
            "STORE_RESERVE_BYTES": "1m", "STORE_RESERVE_PERCENT": "0"},
            stores=lambda worker_id: f"files:{disk / worker_id}")
        with cluster:
            async with aiohttp.ClientSession(base_url=cluster.url) as http:
                stored, refused, error = await _fill(http, 256 * 1024)
                assert refused.status == 507, (refused.status, error)
                assert error["error"]["code"] == "insufficient_storage"
                assert shutil.disk_usage(disk).free >= 512 * 1024
                for file_id, body in stored.items():
                    async with http.get(f"/api/v1/files/{file_id}/download") as resp:
                        assert resp.status == 200
                        assert await resp.read() == body
                await _wait_for(lambda: _all_full(http), "workers reported full")
                workers = await _workers(http)
                assert {w["state"] for w in workers} == {"alive"}
                for file_id in stored:
                    async with http.delete(f"/api/v1/files/{file_id}") as resp:
                        assert resp.status == 200, await resp.text()
            for process in [cluster.master, *cluster.workers.values()]:
                _assert_clean_log(process)


async def _all_full(http: aiohttp.ClientSession) -> bool:
    return {w["space"] for w in await _workers(http)} == {"full"}


async def _upload_works(http: aiohttp.ClientSession) -> bool:
    async with http.put("/api/v1/files/content/after.bin", data=os.urandom(256 * 1024)) as resp:
        if resp.status == 201:
            return True
        assert resp.status == 507, await resp.text()
        return False


async def _wait_for(check, what: str, within: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"not within {within}s: {what}")


class _ShortOfSpace:
    """The storage signal as a disk within one reserve of full gives it."""

    def short(self) -> bool:
        return True


async def test_early_reclaim_under_pressure_spares_uploads_in_flight(tmp_path):
    """Short of space the collector's grace is seconds, not an hour: the
    deleted file's chunks go at once, while an upload still in flight (its
    chunks claimed, not yet referenced) keeps every one of them."""
    async with running_node(tmp_path / "d", gc_grace=3600.0, gc_pressure_grace=1.0) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        node.master.collector.space = _ShortOfSpace()  # type: ignore[assignment]
        gone = os.urandom(300_000)
        async with http.put("/api/v1/files/content/gone.bin", data=gone) as resp:
            assert resp.status == 201
            gone_id = (await resp.json())["file_id"]
        async with http.delete(f"/api/v1/files/{gone_id}") as resp:
            assert resp.status == 200

        kept = os.urandom(300_000)
        upload = node.master.uploads.begin()
        await upload.write(kept[:200_000])
        await asyncio.sleep(1.5)  # well past the pressure grace for both
        before = set(stored_chunks(node))
        report = await node.master.collector.run_once()
        after = set(stored_chunks(node))
        assert report.removed >= 1
        assert len(after) < len(before)
        await upload.write(kept[200_000:])
        result = await upload.commit(owner="local", path="kept.bin")
        async with http.get(f"/api/v1/files/{result.file.file_id}/download") as resp:
            assert resp.status == 200
            assert await resp.read() == kept
