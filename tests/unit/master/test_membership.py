"""Worker liveness, placement eligibility and read order."""

from __future__ import annotations

import time

from echofs.core.vocabulary import Liveness
from echofs.master.membership import WorkerRegistry
from echofs.worker.client import LocalWorkerClient
from echofs.worker.service import WorkerService
from echofs.worker.stores.local import LocalChunkStore


def _client(worker_id: str, tmp_path) -> LocalWorkerClient:
    return LocalWorkerClient(WorkerService(worker_id, LocalChunkStore(tmp_path / worker_id)))


def test_liveness_follows_heartbeat_silence(tmp_path):
    registry = WorkerRegistry(suspect_after=3, dead_after=10)
    registry.register(_client("w1", tmp_path))
    now = time.monotonic()
    assert registry.liveness("w1", now) is Liveness.ALIVE
    assert registry.liveness("w1", now + 4) is Liveness.SUSPECT
    assert registry.liveness("w1", now + 11) is Liveness.DEAD
    assert registry.liveness("nobody") is Liveness.UNKNOWN


def test_failed_calls_make_a_heartbeating_worker_suspect(tmp_path):
    registry = WorkerRegistry(suspect_after=3, dead_after=10)
    registry.register(_client("w1", tmp_path))
    for _ in range(3):
        registry.observe_failure("w1")
    assert registry.liveness("w1") == "suspect"
    registry.observe_success("w1", 0.001)
    assert registry.liveness("w1") == "alive"


def test_failures_stop_counting_once_they_are_old(tmp_path):
    # Nothing calls a suspect worker, so no success would ever clear its
    # failures: a heartbeating worker whose last failure is older than
    # suspect_after is alive again (a healed partition).
    registry = WorkerRegistry(suspect_after=3, dead_after=10)
    registry.register(_client("w1", tmp_path))
    for _ in range(3):
        registry.observe_failure("w1")
    later = time.monotonic() + 4
    registry.heartbeat("w1", None)  # type: ignore[arg-type]
    registry._workers["w1"].last_heartbeat = later
    assert registry.liveness("w1") == "suspect"
    assert registry.liveness("w1", later) == "alive"


def test_expected_workers_are_suspect_until_they_register(tmp_path):
    registry = WorkerRegistry(suspect_after=3, dead_after=10)
    registry.expect(["w1", "w2"])
    assert registry.liveness("w1") == "suspect"
    assert registry.placeable_ids() == ["w1", "w2"]
    assert registry.live_ids() == []
    assert registry.register(_client("w1", tmp_path)) is None
    assert registry.liveness("w1") == "alive"


def test_reregistration_replaces_the_client(tmp_path):
    registry = WorkerRegistry(suspect_after=3, dead_after=10)
    first, second = _client("w1", tmp_path), _client("w1", tmp_path)
    registry.register(first)
    assert registry.register(second) is first
    assert registry.client("w1") is second


def test_read_order_prefers_live_then_fast(tmp_path):
    registry = WorkerRegistry(suspect_after=3, dead_after=10)
    for worker_id in ("w1", "w2", "w3"):
        registry.register(_client(worker_id, tmp_path))
    registry.observe_success("w1", 0.050)
    registry.observe_success("w2", 0.001)
    registry.observe_success("w3", 0.010)
    assert registry.read_order(["w1", "w2", "w3"]) == ["w2", "w3", "w1"]
    for _ in range(3):
        registry.observe_failure("w2")
    assert registry.read_order(["w1", "w2", "w3"]) == ["w3", "w1", "w2"]


def test_dead_workers_leave_placement(tmp_path):
    registry = WorkerRegistry(suspect_after=0.0, dead_after=0.0)
    registry.register(_client("w1", tmp_path))
    assert registry.dead_ids() == ["w1"]
    assert registry.placeable_ids() == []


def test_a_write_stops_waiting_on_a_worker_silent_for_half_of_suspect_after(tmp_path):
    registry = WorkerRegistry(suspect_after=2, dead_after=10)
    registry.register(_client("w1", tmp_path))
    now = time.monotonic()
    assert not registry.unresponsive("w1", now)
    assert not registry.unresponsive("w1", now + 0.9)
    # Still alive to everyone else, but the write path gives up on it.
    assert registry.liveness("w1", now + 1.1) is Liveness.ALIVE
    assert registry.unresponsive("w1", now + 1.1)
    assert registry.unresponsive("w1", now + 3)  # suspect
    assert registry.unresponsive("nobody")
