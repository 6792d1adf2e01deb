"""The dashboard JSON is computed from metric families: sums, means and
error counts over a registry of its own, with known values."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from echofs.observability.dashboard import dashboard


def test_sections_are_computed_from_the_families():
    registry = CollectorRegistry()
    uploads = Counter("echofs_uploads", "", ["outcome"], registry=registry)
    uploads.labels("ok").inc(3)
    uploads.labels("failed").inc()
    Counter("echofs_downloads", "", ["outcome"], registry=registry).labels("ok").inc(2)
    requests = Counter("echofs_http_requests", "", ["method", "route", "status"],
                       registry=registry)
    requests.labels("DELETE", "/api/v1/files/{file_id}", "200").inc(4)
    requests.labels("DELETE", "/api/v1/files/{file_id}", "404").inc(1)
    requests.labels("GET", "/api/v1/files", "500").inc(2)
    latency = Histogram("echofs_http_request_duration_seconds", "", ["method", "route"],
                        registry=registry)
    latency.labels("POST", "/api/v1/files/upload").observe(1.0)
    latency.labels("PUT", "/api/v1/files/content/{path}").observe(3.0)
    latency.labels("GET", "/api/v1/files/{file_id}/download").observe(0.5)
    grpc = Counter("echofs_grpc_requests", "", ["service", "method", "status"],
                   registry=registry)
    grpc.labels("s", "Put", "OK").inc(10)
    grpc.labels("s", "Put", "UNAVAILABLE").inc(2)
    stored = Gauge("echofs_worker_stored_bytes", "", ["worker"], registry=registry)
    stored.labels("w1").set(100)
    stored.labels("w2").set(50)
    workers = Gauge("echofs_workers", "", ["state"], registry=registry)
    workers.labels("alive").set(2)

    body = dashboard(registry.collect(), open_connections=7)
    assert body["file_operations"]["total_uploads"] == 3
    assert body["file_operations"]["failed_uploads"] == 1
    assert body["file_operations"]["total_downloads"] == 2
    assert body["file_operations"]["total_deletes"] == 4  # the 404 deleted nothing
    assert body["performance"]["avg_upload_time_seconds"] == 2.0
    assert body["performance"]["avg_download_time_seconds"] == 0.5
    assert body["system"]["storage_usage_bytes"] == 150
    assert body["system"]["active_connections"] == 7
    assert body["system"]["workers"] == {"alive": 2, "suspect": 0, "dead": 0}
    assert body["grpc"] == {"total_requests": 12, "total_errors": 2}
    assert body["http"] == {"total_requests": 7, "total_errors": 3, "server_errors": 2}


def test_an_empty_registry_gives_zeros_not_errors():
    body = dashboard(CollectorRegistry().collect())
    assert body["performance"]["avg_upload_time_seconds"] == 0.0
    assert body["http"]["total_requests"] == 0 and body["system"]["active_connections"] is None
