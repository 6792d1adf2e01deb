"""``GET /metrics/dashboard``: the original's JSON summary of the metrics.

The original served five sections (file operations, performance, system,
gRPC, HTTP) with fields such as ``total_uploads`` and
``avg_upload_time_seconds``. Here every figure is computed from this
process's Prometheus families (:func:`echofs.observability.metrics.collect`),
the same numbers ``/metrics`` exports, at the moment of the request: counters
since the process started, state (workers, stored bytes, queue) as of now.
Nothing is stored apart from the registry, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client.core import Metric

from echofs.observability.http import DOWNLOAD_ROUTES, UPLOAD_ROUTES

_DELETE_ROUTE = ("DELETE", "/api/v1/files/{file_id}")


class Families:
    """The samples of collected families, looked up by sample name."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._samples: dict[str, list[tuple[dict[str, str], float]]] = {}
        for family in families:
            for sample in family.samples:
                self._samples.setdefault(sample.name, []).append((sample.labels, sample.value))

    def samples(self, name: str) -> Iterator[tuple[dict[str, str], float]]:
        yield from self._samples.get(name, ())

    def total(self, name: str, **labels: str) -> float:
        """The sum of a sample's values over the series matching ``labels``."""
        return sum(value for found, value in self.samples(name)
                   if all(found.get(k) == v for k, v in labels.items()))

    def has(self, name: str) -> bool:
        return name in self._samples


def _mean(families: Families, base: str, routes: Iterable[tuple[str, str]]) -> float:
    """Mean of a latency histogram over some (method, route) series."""
    wanted = set(routes)
    total = count = 0.0
    for labels, value in families.samples(f"{base}_sum"):
        if (labels.get("method"), labels.get("route")) in wanted:
            total += value
    for labels, value in families.samples(f"{base}_count"):
        if (labels.get("method"), labels.get("route")) in wanted:
            count += value
    return round(total / count, 6) if count else 0.0


def _status(labels: dict[str, str]) -> int:
    try:
        return int(labels.get("status", "0"))
    except ValueError:
        return 0


def dashboard(families: Iterable[Metric], *, open_connections: int | None = None
              ) -> dict[str, Any]:
    """The original's sections (and a few more of our figures in each)."""
    f = Families(families)
    http = list(f.samples("echofs_http_requests_total"))
    grpc = list(f.samples("echofs_grpc_requests_total"))
    deletes = sum(v for labels, v in http
                  if (labels.get("method"), labels.get("route")) == _DELETE_ROUTE
                  and _status(labels) < 400)
    requests_time = f.total("echofs_http_request_duration_seconds_sum")
    requests_count = f.total("echofs_http_request_duration_seconds_count")
    workers = {labels["state"]: int(v) for labels, v in f.samples("echofs_workers")}
    return {
        "file_operations": {
            "total_uploads": f.total("echofs_uploads_total", outcome="ok"),
            "total_downloads": f.total("echofs_downloads_total", outcome="ok"),
            "total_deletes": deletes,
            "failed_uploads": f.total("echofs_uploads_total", outcome="failed"),
            "rejected_uploads": f.total("echofs_uploads_total", outcome="rejected"),
            "bytes_uploaded": f.total("echofs_upload_bytes_total"),
            "bytes_downloaded": f.total("echofs_download_bytes_total"),
            "chunks_deduplicated": f.total("echofs_dedup_chunks_total"),
            "stale_reads": f.total("echofs_stale_reads_total"),
        },
        "performance": {
            "avg_upload_time_seconds": _mean(f, "echofs_http_request_duration_seconds",
                                             UPLOAD_ROUTES),
            "avg_download_time_seconds": _mean(f, "echofs_http_request_duration_seconds",
                                               DOWNLOAD_ROUTES),
            "avg_request_time_seconds": round(requests_time / requests_count, 6)
            if requests_count else 0.0,
            "quorum_failures": f.total("echofs_quorum_failures_total"),
        },
        "system": {
            # Connections of the HTTP server that answered (None if unknown).
            "active_connections": open_connections,
            "active_requests": int(f.total("echofs_http_requests_in_flight")),
            # Bytes the workers report storing, every copy counted.
            "storage_usage_bytes": f.total("echofs_worker_stored_bytes"),
            "storage_capacity_bytes": f.total("echofs_worker_capacity_bytes"),
            "storage_free_bytes": f.total("echofs_worker_free_bytes"),
            "workers": {"alive": workers.get("alive", 0), "suspect": workers.get("suspect", 0),
                        "dead": workers.get("dead", 0)},
            "replication_queue_depth": int(f.total("echofs_replication_queue_depth")),
        },
        "grpc": {
            "total_requests": sum(v for _, v in grpc),
            "total_errors": sum(v for labels, v in grpc if labels.get("status") != "OK"),
        },
        "http": {
            "total_requests": sum(v for _, v in http),
            "total_errors": sum(v for labels, v in http if _status(labels) >= 400),
            "server_errors": sum(v for labels, v in http if _status(labels) >= 500),
        },
    }
