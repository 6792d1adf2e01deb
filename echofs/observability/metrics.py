"""Every Prometheus metric EchoFS exports, defined once, here.

One module so operators (and the Grafana dashboard in ``config/grafana``) have
one list of names. Families are created at import time in the process-wide
default registry: a process that builds several nodes in turn (tests) shares
them instead of registering duplicates.

Labels stay low-cardinality: route *templates*, gRPC method names, worker ids,
modes, reasons, outcomes — never a file id, a path or a user. Per-file facts
(modes) are exported as counts per mode.

Three kinds of families:

- **events** (counters, histograms) that code increments as things happen;
- **state** (queue depth, worker liveness and capacity, store contents) that is
  read from the live objects when ``/metrics`` is scraped, through sources
  registered with :func:`track` (see ``echofs.observability.state``), so a
  stopped node leaves no stale series behind;
- the **controller's** families, registered only by a process that runs the
  controller (:func:`register_controller_metrics`), so a master never exports a
  partition risk it does not compute.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from echofs.core.errors import ChunkMissing

__all__ = ["CONTENT_TYPE_LATEST", "generate_latest"]

log = logging.getLogger(__name__)

# ``*_created`` timestamps would double the series count and no panel uses them.
disable_created_metrics()

# Request latencies: sub-millisecond metadata calls up to minute-long transfers.
_REQUEST_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
                    1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# One chunk (~1 MiB) in or out of a store: an fsync is milliseconds, S3 more.
_STORE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
                  0.5, 1.0, 2.5, 5.0, 10.0)
# Fault healed → back at RF: seconds for a blip, up to an hour for a dead disk.
_CONVERGENCE_BUCKETS = (0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
                        600.0, 1800.0, 3600.0)

# -- HTTP (every role's aiohttp app, see echofs.observability.http) -------------------

HTTP_REQUESTS = Counter(
    "echofs_http_requests", "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"])
HTTP_LATENCY = Histogram(
    "echofs_http_request_duration_seconds",
    "Time from request to the last byte of the response, by method and route template.",
    ["method", "route"], buckets=_REQUEST_BUCKETS)
HTTP_IN_FLIGHT = Gauge("echofs_http_requests_in_flight", "HTTP requests being handled now.")

UPLOADS = Counter("echofs_uploads", "File uploads finished, by outcome (ok, rejected, failed).",
                  ["outcome"])
DOWNLOADS = Counter("echofs_downloads",
                    "File downloads finished, by outcome (ok, rejected, failed).", ["outcome"])
CHUNK_CACHE = Counter("echofs_chunk_cache_lookups",
                      "Reads of a chunk asked of the master's small-chunk cache, by result.",
                      ["result"])
UPLOAD_BYTES = Counter("echofs_upload_bytes", "File bytes received from clients.")
DOWNLOAD_BYTES = Counter("echofs_download_bytes", "File bytes sent to clients.")
READ_HEDGES = Counter(
    "echofs_read_hedges",
    "Hedged chunk reads: started (a replica slower than its recent p99, so the next was "
    "asked too) and won (the hedge answered first).", ["outcome"])
DEDUP_CHUNKS = Counter("echofs_dedup_chunks",
                       "Uploaded chunks not stored again because enough copies existed.")
DEDUP_BYTES = Counter("echofs_dedup_bytes", "Raw bytes of deduplicated chunks.")
STALE_READS = Counter("echofs_stale_reads",
                      "Reads answered with an older version than the latest committed one "
                      "(responses marked X-EchoFS-Stale: true).")
UPLOAD_SESSION_EVENTS = Counter(
    "echofs_upload_session_events",
    "Resumable upload sessions: created, part_stored, part_refused (digest or size did not "
    "match), completed, aborted, expired.", ["event"])
MASTER_CHUNK_BYTES_SENT = Counter(
    "echofs_master_chunk_bytes_sent",
    "Chunk frame bytes the master sent to workers, by path (direct: one put per copy; "
    "chain: once, to the head of a write pipeline that relays it to the other targets). "
    "Against echofs_upload_bytes: the master's egress per byte uploaded.", ["path"])
QUORUM_FAILURES = Counter("echofs_quorum_failures",
                          "Writes refused because too few replicas could be written.")

# -- gRPC (servers of every role, see echofs.observability.grpc) ----------------------

GRPC_REQUESTS = Counter(
    "echofs_grpc_requests", "gRPC calls served, by service, method and status.",
    ["service", "method", "status"])
GRPC_LATENCY = Histogram(
    "echofs_grpc_request_duration_seconds", "Time to serve a gRPC call, by service and method.",
    ["service", "method"], buckets=_REQUEST_BUCKETS)

# -- workers' chunk stores ----------------------------------------------------------------

STORE_OPS = Counter(
    "echofs_chunk_store_operations",
    "Chunk store operations, by worker, operation and outcome (ok, missing, error).",
    ["worker", "op", "outcome"])
STORE_LATENCY = Histogram(
    "echofs_chunk_store_operation_duration_seconds",
    "Time of one chunk store operation, by worker and operation.",
    ["worker", "op"], buckets=_STORE_BUCKETS)

# -- replication (master) ------------------------------------------------------------------

REPLICATION_COPIES = Counter(
    "echofs_replication_copies", "Replication tasks attempted, by outcome (ok, failed).",
    ["outcome"])
REPLICATION_TASKS_DROPPED = Counter(
    "echofs_replication_tasks_dropped",
    "Replication tasks dropped unattempted, by reason (orphaned: owed to a chunk of an "
    "upload that never committed; collected: the chunk was garbage-collected; target_dead: "
    "re-aimed at the chunk's new home).", ["reason"])
REPLICATION_NO_SOURCE = Counter(
    "echofs_replication_no_source",
    "Replication attempts that found no good source copy to copy from (each is retried "
    "with backoff: a steady rate means tasks that cannot make progress).")
CONVERGENCE = Histogram(
    "echofs_replication_convergence_seconds",
    "Time from a fault healing (or a backlog appearing) until the replication queue is "
    "empty again.", buckets=_CONVERGENCE_BUCKETS)

# -- state read at scrape time ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StateFamily:
    help: str
    labels: tuple[str, ...] = ()


STATE_FAMILIES: dict[str, StateFamily] = {
    # master: the durable replication queue and its convergence
    "echofs_replication_queue_depth": StateFamily("Replication tasks waiting (hinted handoff, "
                                                  "repairs, re-homing)."),
    "echofs_replication_queue_oldest_age_seconds": StateFamily(
        "Age of the oldest waiting replication task (0 when the queue is empty)."),
    "echofs_replication_last_convergence_seconds": StateFamily(
        "How long the last convergence took (absent until one happened)."),
    # master: workers as membership sees them
    "echofs_workers": StateFamily("Registered workers by liveness state.", ("state",)),
    "echofs_worker_up": StateFamily("1 if the worker is alive, else 0.", ("worker",)),
    "echofs_worker_heartbeat_age_seconds": StateFamily(
        "Seconds since the worker's last heartbeat.", ("worker",)),
    "echofs_worker_capacity_bytes": StateFamily("Worker store capacity, from its heartbeat.",
                                                ("worker",)),
    "echofs_worker_free_bytes": StateFamily("Worker store free space, from its heartbeat.",
                                            ("worker",)),
    "echofs_worker_stored_bytes": StateFamily("Bytes the worker stores, from its heartbeat.",
                                              ("worker",)),
    "echofs_worker_chunks": StateFamily("Chunks the worker stores, from its heartbeat.",
                                        ("worker",)),
    # worker: its own store
    "echofs_store_chunks": StateFamily("Chunks in this worker's store.", ("worker",)),
    "echofs_store_bytes": StateFamily("Bytes in this worker's store.", ("worker",)),
    "echofs_store_inflight_operations": StateFamily(
        "Chunk operations this worker is serving now.", ("worker",)),
}

# One sample: family name, label values (in the family's label order), value.
Sample = tuple[str, tuple[str, ...], float]
# A source: called with its owner before a scrape renders; returns its samples.
# It gets the owner as an argument (rather than closing over it) so that the
# collector holds the owner only weakly.
Source = Callable[[Any], Awaitable[Iterable[Sample]]]


class _StateCollector(Collector):
    """Yields every one of its families on each collect, with the samples its
    live sources produced at their last refresh."""

    def __init__(self, families: dict[str, StateFamily]) -> None:
        self.families = families
        self._lock = threading.Lock()
        self._sources: dict[int, tuple[weakref.ref[object], Source]] = {}
        self._samples: dict[int, list[Sample]] = {}

    def track(self, owner: object, source: Source) -> None:
        key = id(owner)
        with self._lock:
            self._sources[key] = (weakref.ref(owner, lambda _ref: self.untrack_key(key)), source)

    def untrack(self, owner: object) -> None:
        self.untrack_key(id(owner))

    def untrack_key(self, key: int) -> None:
        with self._lock:
            self._sources.pop(key, None)
            self._samples.pop(key, None)

    async def refresh(self) -> None:
        with self._lock:
            sources = [(key, ref, source) for key, (ref, source) in self._sources.items()]
        for key, ref, source in sources:
            owner = ref()
            if owner is None:
                continue
            try:
                samples = list(await source(owner))
            except Exception:
                # One unreadable source (metadata store down) must not hide the
                # rest of the process's metrics; its series vanish until it
                # answers again rather than repeating stale values.
                log.warning("metrics source of %s failed", type(owner).__name__, exc_info=True)
                samples = []
            del owner
            for name, labels, _ in samples:
                family = self.families.get(name)
                if family is None or len(labels) != len(family.labels):
                    raise ValueError(f"state sample {name}{labels} matches no declared family")
            with self._lock:
                if key in self._sources:
                    self._samples[key] = samples

    def describe(self) -> Iterator[GaugeMetricFamily]:
        for name, family in self.families.items():
            yield GaugeMetricFamily(name, family.help, labels=family.labels)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        families = {name: GaugeMetricFamily(name, f.help, labels=f.labels)
                    for name, f in self.families.items()}
        with self._lock:
            samples = [s for batch in self._samples.values() for s in batch]
        for name, labels, value in samples:
            families[name].add_metric(list(labels), value)
        yield from families.values()


_STATE = _StateCollector(STATE_FAMILIES)
REGISTRY.register(_STATE)

# -- the controller's families (registered by a process that runs the controller) --------

MODE_TRANSITIONS = Counter(
    "echofs_mode_transitions", "Consistency mode changes, by old mode, new mode and reason.",
    ["from_mode", "to_mode", "reason"], registry=None)
_CONTROLLER_STATE = _StateCollector({
    "echofs_files_by_mode": StateFamily("Files per consistency mode (as the controller "
                                        "decided them).", ("mode",)),
    "echofs_partition_risk": StateFamily("The controller's partition risk estimate over "
                                         "all workers, 0 (none) to 1."),
})
CONTROLLER_METRICS: tuple[Collector, ...] = (MODE_TRANSITIONS, _CONTROLLER_STATE)

_controller_lock = threading.Lock()
_controller_registered = False


def register_controller_metrics() -> None:
    """Called when a process starts a controller; safe to call again."""
    global _controller_registered
    with _controller_lock:
        if not _controller_registered:
            for metric in CONTROLLER_METRICS:
                REGISTRY.register(metric)
            _controller_registered = True


def track(owner: object, source: Source) -> None:
    """Export ``source``'s samples while ``owner`` lives (or until :func:`untrack`)."""
    _STATE.track(owner, source)


def track_controller(owner: object, source: Source) -> None:
    """Like :func:`track`, for the controller's state families."""
    register_controller_metrics()
    _CONTROLLER_STATE.track(owner, source)


def untrack(owner: object) -> None:
    _STATE.untrack(owner)
    _CONTROLLER_STATE.untrack(owner)


async def render() -> bytes:
    """The Prometheus text exposition of this process, state refreshed first."""
    await _STATE.refresh()
    await _CONTROLLER_STATE.refresh()
    return generate_latest(REGISTRY)


async def collect() -> list[Metric]:
    """Every family of this process, state refreshed first (what ``/metrics``
    renders, as objects: the dashboard JSON is computed from these)."""
    await _STATE.refresh()
    await _CONTROLLER_STATE.refresh()
    return list(REGISTRY.collect())


@contextmanager
def store_operation(worker: str, op: str) -> Iterator[None]:
    """Count and time one chunk store operation (``missing`` is an answer,
    counted apart from errors)."""
    started = time.perf_counter()
    outcome = "ok"
    try:
        yield
    except ChunkMissing:
        outcome = "missing"
        raise
    except BaseException:
        outcome = "error"
        raise
    finally:
        STORE_OPS.labels(worker, op, outcome).inc()
        STORE_LATENCY.labels(worker, op).observe(time.perf_counter() - started)
