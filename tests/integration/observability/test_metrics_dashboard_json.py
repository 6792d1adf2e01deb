"""``GET /metrics/dashboard``: the original's sections, computed from the
process's real metrics — every figure moves with what the node really did,
and agrees with ``/metrics`` read at the same moment."""

from __future__ import annotations

import os

import aiohttp
import pytest

from echofs.testing.node import running_node

SECTIONS = {"file_operations", "performance", "system", "grpc", "http"}


@pytest.fixture
async def http(tmp_path):
    async with running_node(tmp_path / "d") as node, \
            aiohttp.ClientSession(base_url=node.url) as session:
        yield session


async def dashboard(http) -> dict:
    async with http.get("/metrics/dashboard") as resp:
        body = await resp.json()
        assert resp.status == 200, body
        return body


async def scraped_total(http, name: str, **labels: str) -> float:
    """A counter's value summed over matching series, as /metrics says it."""
    async with http.get("/metrics") as resp:
        text = await resp.text()
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


async def test_the_sections_move_with_real_operations(http):
    before = await dashboard(http)
    assert set(before) == SECTIONS
    assert before["system"]["workers"]["alive"] == 3
    assert before["system"]["active_connections"] >= 1  # this request's own

    data = os.urandom(300 * 1024)
    ids = []
    for n in range(2):
        async with http.put(f"/api/v1/files/content/dash/{n}.bin", data=data) as resp:
            ids.append((await resp.json())["file_id"])
    async with http.get(f"/api/v1/files/{ids[0]}/download") as resp:
        assert await resp.read() == data
    async with http.delete(f"/api/v1/files/{ids[1]}") as resp:
        assert resp.status == 200
    async with http.get("/api/v1/files/no-such-file") as resp:
        assert resp.status == 404

    after = await dashboard(http)
    ops, was = after["file_operations"], before["file_operations"]
    assert ops["total_uploads"] - was["total_uploads"] == 2
    assert ops["total_downloads"] - was["total_downloads"] == 1
    assert ops["total_deletes"] - was["total_deletes"] == 1
    assert ops["bytes_uploaded"] - was["bytes_uploaded"] == 2 * len(data)
    assert after["performance"]["avg_upload_time_seconds"] > 0
    assert after["performance"]["avg_download_time_seconds"] > 0
    # Every copy counted: at least three copies of the one file kept.
    assert after["system"]["storage_usage_bytes"] >= before["system"]["storage_usage_bytes"]
    assert after["http"]["total_requests"] > before["http"]["total_requests"]
    assert after["http"]["total_errors"] - before["http"]["total_errors"] >= 1
    # The same counters /metrics exports, read right after.
    assert ops["total_uploads"] == await scraped_total(http, "echofs_uploads_total",
                                                       outcome="ok")
    assert ops["total_downloads"] == await scraped_total(http, "echofs_downloads_total",
                                                         outcome="ok")
