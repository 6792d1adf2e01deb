"""One request id, followed across processes: from the master's log line for
an HTTP request to the worker log lines of the chunk calls it caused; and
the gRPC side of every role counted in its ``/metrics``."""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import aiohttp
import pytest

from echofs.testing.cluster import ProcessCluster
from echofs.testing.metrics import scrape
from echofs.testing.waiting import eventually

MIB = 1024 * 1024


@pytest.fixture
def cluster(tmp_path):
    # JSON logs: each line one event, so the test reads fields, not text.
    with ProcessCluster(tmp_path, env={"LOG_FORMAT": "json"}) as c:
        yield c


def events(log: Path) -> list[dict]:
    found = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line from before logging was configured
        if isinstance(event, dict):
            found.append(event)
    return found


def worker_http(cluster: ProcessCluster, worker_id: str) -> str:
    health = cluster.workers[worker_id].health_url
    assert health is not None
    return health.removesuffix("/health")


async def test_a_request_id_is_followed_from_master_to_workers(cluster):
    request_id = f"trace-{uuid.uuid4().hex[:12]}"
    data = os.urandom(2 * MIB + 5)
    headers = {"X-Request-Id": request_id}
    async with aiohttp.ClientSession(base_url=cluster.url) as http:
        async with http.put("/api/v1/files/content/traced.bin", data=data,
                            headers=headers) as resp:
            assert resp.status == 201, await resp.text()
            assert resp.headers["X-Request-Id"] == request_id
            file_id = (await resp.json())["file_id"]
        async with http.get(f"/api/v1/files/{file_id}") as resp:
            chunk_ids = [c["chunk_id"] for c in (await resp.json())["chunk_list"]]
    assert len(chunk_ids) == 3

    master_log = cluster.master.log_path

    def logged_requests() -> list[dict]:
        return [e for e in events(master_log) if e.get("event") == "request"
                and e.get("request_id") == request_id]

    async def request_logged() -> bool:
        return bool(logged_requests())

    # Request lines are buffered for a moment (see observability.request_log).
    await eventually(request_logged, 5, "the master's request line")
    requests = logged_requests()
    assert len(requests) == 1, requests
    assert requests[0]["file_id"] == file_id and requests[0]["status"] == 201
    assert requests[0]["bytes"] == len(data)

    def traced_puts() -> list[dict]:
        return [e for w in cluster.workers.values() for e in events(w.log_path)
                if e.get("event") == "rpc" and e.get("request_id") == request_id
                and e.get("method") in ("PutChunk", "PutChunks", "PutChunkChain")]

    async def every_copy_logged() -> bool:
        return len(traced_puts()) == len(chunk_ids) * 3

    # The upload returns at quorum; the last copies may land a moment later.
    # Large chunks go down the write pipeline: the relayed calls carry the id too.
    await eventually(every_copy_logged, 20, "a PutChunk log line per copy with the request id")
    puts = traced_puts()
    assert {e["status"] for e in puts} == {"OK"}
    assert {e["worker"] for e in puts} == {"w1", "w2", "w3"}
    assert {e["chunk"] for e in puts} == {c[:16] for c in chunk_ids}
    assert all(e["duration_ms"] >= 0 and e["bytes"] > 0 for e in puts)


async def test_a_download_carries_its_request_id_to_the_replica_it_reads(cluster):
    async with aiohttp.ClientSession(base_url=cluster.url) as http:
        async with http.put("/api/v1/files/content/d.bin", data=os.urandom(MIB)) as resp:
            file_id = (await resp.json())["file_id"]
        request_id = f"read-{uuid.uuid4().hex[:12]}"
        async with http.get(f"/api/v1/files/{file_id}/download",
                            headers={"X-Request-Id": request_id}) as resp:
            assert resp.status == 200
            await resp.read()

    def traced_gets() -> list[dict]:
        return [e for w in cluster.workers.values() for e in events(w.log_path)
                if e.get("event") == "rpc" and e.get("request_id") == request_id]

    async def logged() -> bool:
        return len(traced_gets()) >= 1

    await eventually(logged, 20, "the worker's GetChunk log line with the request id")
    assert {e["method"] for e in traced_gets()} == {"GetChunk"}


async def test_an_id_a_client_cannot_be_trusted_with_is_replaced(cluster):
    async with aiohttp.ClientSession(base_url=cluster.url) as http, http.put(
            "/api/v1/files/content/x.bin", data=b"x" * 1000,
            headers={"X-Request-Id": "not plain; has spaces"}) as resp:
        assert resp.status == 201
        given = resp.headers["X-Request-Id"]
    assert given != "not plain; has spaces" and given.isalnum()


async def test_grpc_calls_are_counted_by_every_role(cluster):
    async with aiohttp.ClientSession(base_url=cluster.url) as http, http.put(
            "/api/v1/files/content/m.bin", data=os.urandom(MIB)) as resp:
        assert resp.status == 201
    worker = await scrape(f"{worker_http(cluster, 'w1')}/metrics")
    # A 1 MiB chunk goes down the write pipeline (PutChunkChain), not PutChunk.
    assert worker.total("echofs_grpc_requests_total", service="echofs.v1.WorkerService",
                        method="PutChunkChain", status="OK") >= 1
    assert worker.total("echofs_grpc_request_duration_seconds_count",
                        method="PutChunkChain") >= 1
    assert worker.value("echofs_store_chunks", worker="w1") == 1
    master = await scrape(f"{cluster.url}/metrics")
    # Workers heartbeat to the master's membership service over gRPC.
    assert master.total("echofs_grpc_requests_total", method="Heartbeat", status="OK") >= 1
    assert master.value("echofs_workers", state="alive") == 3
