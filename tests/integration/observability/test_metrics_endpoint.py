"""``GET /metrics`` of an embedded node: what happened and what is, under
low-cardinality labels (route templates, never a file id or a path)."""

from __future__ import annotations

import os
import shutil

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from prometheus_client import CONTENT_TYPE_LATEST

from echofs.core.errors import QuorumNotReached
from echofs.observability.http import DOWNLOAD_ROUTES, UPLOAD_ROUTES, metrics_middleware
from echofs.serving.middleware import error_middleware
from echofs.testing.disk import stored_copies
from echofs.testing.http import download, error_of, put_raw, upload
from echofs.testing.metrics import Scrape, scrape
from echofs.testing.node import drain_replication, worker_root

MIB = 1024 * 1024


async def _metrics(node) -> Scrape:
    return await scrape(f"{node.url}/metrics")


async def test_requests_are_counted_by_route_template_never_by_file(http, node):
    before = await _metrics(node)
    data = os.urandom(3 * MIB + 123)
    body = await put_raw(http, "private/report-2024.bin", data)
    file_id = body["file_id"]
    assert await download(http, file_id) == data
    async with http.get(f"/api/v1/files/{file_id}") as resp:
        assert resp.status == 200
    after = await _metrics(node)

    def delta(name: str, **labels: str) -> float:
        return after.total(name, **labels) - before.total(name, **labels)

    assert delta("echofs_http_requests_total", method="PUT",
                 route="/api/v1/files/content/{path}", status="201") == 1
    assert delta("echofs_http_requests_total", method="GET",
                 route="/api/v1/files/{file_id}/download", status="200") == 1
    assert delta("echofs_http_requests_total", method="GET",
                 route="/api/v1/files/{file_id}", status="200") == 1
    assert delta("echofs_http_request_duration_seconds_count",
                 route="/api/v1/files/{file_id}/download") == 1
    assert delta("echofs_uploads_total", outcome="ok") == 1
    assert delta("echofs_downloads_total", outcome="ok") == 1
    assert delta("echofs_upload_bytes_total") == len(data)
    assert delta("echofs_download_bytes_total") == len(data)
    # Four chunks, three copies each, each a timed store write.
    assert delta("echofs_chunk_store_operations_total", op="put", outcome="ok") == 12
    assert delta("echofs_chunk_store_operation_duration_seconds_count", op="put") == 12
    # No label anywhere carries a file id or a path.
    for (_name, labels), _value in after.samples.items():
        for _key, value in labels:
            assert file_id not in value and "report-2024" not in value, labels


async def test_state_is_read_from_the_live_node(http, node):
    await put_raw(http, "a.bin", os.urandom(2 * MIB))
    state = await _metrics(node)
    assert state.value("echofs_workers", state="alive") == 3
    assert state.value("echofs_workers", state="dead") == 0
    for worker in ("w1", "w2", "w3"):
        assert state.value("echofs_worker_up", worker=worker) == 1
        assert state.value("echofs_store_chunks", worker=worker) == 2
        assert state.value("echofs_worker_capacity_bytes", worker=worker) > 0
    stored = sum(copy.length for copy in stored_copies(worker_root(node, "w1")).values())
    assert state.value("echofs_store_bytes", worker="w1") == stored
    assert state.value("echofs_replication_queue_depth") == 0
    assert state.value("echofs_replication_queue_oldest_age_seconds") == 0


async def test_a_stopped_node_leaves_no_series_behind(tmp_path):
    from echofs.observability import metrics
    from echofs.testing.node import running_node

    async with running_node(tmp_path / "gone", workers=2, replication_factor=2) as node:
        live = await _metrics(node)
        assert live.label_values("echofs_store_chunks", "worker") >= {"w1", "w2"}
    leftover = Scrape.parse((await metrics.render()).decode())
    assert leftover.value("echofs_workers", state="alive") is None
    assert leftover.label_values("echofs_store_chunks", "worker") == set()


async def test_quorum_failures_and_failed_uploads_are_counted(http, node):
    before = await _metrics(node)
    for worker in ("w1", "w2"):  # their stores refuse every write
        root = worker_root(node, worker)
        shutil.rmtree(root)
        root.write_bytes(b"not a directory")
    async with http.put("/api/v1/files/content/q.bin", data=os.urandom(MIB)) as resp:
        assert resp.status == 503
        assert (await error_of(resp))["code"] == "quorum_not_reached"
    after = await _metrics(node)
    assert after.total("echofs_quorum_failures_total") - before.total(
        "echofs_quorum_failures_total") == 1
    assert after.total("echofs_uploads_total", outcome="failed") - before.total(
        "echofs_uploads_total", outcome="failed") == 1
    assert after.total("echofs_chunk_store_operations_total", op="put", outcome="error") > \
        before.total("echofs_chunk_store_operations_total", op="put", outcome="error")


async def test_replication_backlog_and_convergence_are_exported(http, node):
    root = worker_root(node, "w3")
    shutil.rmtree(root)
    root.write_bytes(b"not a directory")
    await put_raw(http, "r.bin", os.urandom(2 * MIB))
    backlog = await _metrics(node)
    assert backlog.value("echofs_replication_queue_depth") == 2
    assert backlog.value("echofs_replication_queue_oldest_age_seconds") > 0
    converged_before = backlog.total("echofs_replication_convergence_seconds_count")
    copies_before = backlog.total("echofs_replication_copies_total", outcome="ok")
    root.unlink()
    await drain_replication(node)
    healed = await _metrics(node)
    assert healed.value("echofs_replication_queue_depth") == 0
    assert healed.value("echofs_replication_last_convergence_seconds") > 0
    assert healed.total("echofs_replication_convergence_seconds_count") == converged_before + 1
    assert healed.total("echofs_replication_copies_total", outcome="ok") >= copies_before + 2


async def test_routes_named_as_uploads_and_downloads_exist_in_the_master(node):
    app = node._runner.app  # the very app the node serves
    served = {(r.method, r.resource.canonical) for r in app.router.routes()
              if r.resource is not None}
    assert served >= UPLOAD_ROUTES | DOWNLOAD_ROUTES


async def test_stale_responses_and_unmatched_routes_are_counted():
    async def stale(_request: web.Request) -> web.Response:
        return web.Response(text="old", headers={"X-EchoFS-Stale": "true"})

    async def no_quorum(_request: web.Request) -> web.Response:
        raise QuorumNotReached("1 of 2 required replicas")

    app = web.Application(middlewares=[error_middleware, metrics_middleware])
    app.router.add_get("/stale", stale)
    app.router.add_post("/write", no_quorum)
    from prometheus_client import REGISTRY

    def value(name: str, labels: dict[str, str] | None = None) -> float:
        return REGISTRY.get_sample_value(name, labels or {}) or 0.0

    stale_before = value("echofs_stale_reads_total")
    quorum_before = value("echofs_quorum_failures_total")
    unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
    unmatched_before = value("echofs_http_requests_total", unmatched)
    async with TestClient(TestServer(app)) as client:
        assert (await client.get("/stale")).status == 200
        assert (await client.post("/write")).status == 503
        assert (await client.get("/files/9f86d081884c7d65")).status == 404
    assert value("echofs_stale_reads_total") == stale_before + 1
    assert value("echofs_quorum_failures_total") == quorum_before + 1
    assert value("echofs_http_requests_total", unmatched) == unmatched_before + 1
    assert value("echofs_http_requests_total",
                 {"method": "POST", "route": "/write", "status": "503"}) >= 1


async def test_metrics_answers_in_prometheus_text_format(node):
    async with aiohttp.ClientSession() as session, session.get(f"{node.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == CONTENT_TYPE_LATEST
        assert resp.content_type == "text/plain"
        text = await resp.text()
    assert "# TYPE echofs_http_requests_total counter" in text


async def test_multipart_uploads_and_deduplication_are_counted(http, node):
    before = await _metrics(node)
    data = os.urandom(2 * MIB)
    await upload(http, "one.bin", data)
    await upload(http, "two.bin", data)  # same bytes: every chunk deduplicated
    after = await _metrics(node)

    def delta(name: str, **labels: str) -> float:
        return after.total(name, **labels) - before.total(name, **labels)

    assert delta("echofs_http_requests_total", method="POST", route="/api/v1/files/upload",
                 status="201") == 2
    assert delta("echofs_uploads_total", outcome="ok") == 2
    assert delta("echofs_upload_bytes_total") == 2 * len(data)
    assert delta("echofs_dedup_chunks_total") == 2
    assert delta("echofs_dedup_bytes_total") == len(data)
    assert delta("echofs_chunk_store_operations_total", op="put") == 2 * 3
