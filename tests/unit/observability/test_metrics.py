"""The metric registry: state sources come and go with their owners, a
failing source hides only itself, store operations are counted by outcome,
request ids are sanitised, and the controller's families stay out of
processes that do not run the controller."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap

import pytest
from prometheus_client import REGISTRY

from echofs.core.errors import ChunkMissing
from echofs.observability import metrics
from echofs.observability.grpc import split_method
from echofs.observability.request_id import accept_request_id, valid_request_id
from echofs.testing.metrics import Scrape


class Owner:
    """Stands in for a role: something whose lifetime bounds its series."""

    def __init__(self, worker: str, chunks: float) -> None:
        self.worker = worker
        self.chunks = chunks


async def _store_samples(owner: Owner) -> list[metrics.Sample]:
    return [("echofs_store_chunks", (owner.worker,), owner.chunks)]


async def _scrape() -> Scrape:
    return Scrape.parse((await metrics.render()).decode())


async def test_a_tracked_source_is_read_at_each_scrape_and_vanishes_when_untracked():
    owner = Owner("unit-a", 3)
    metrics.track(owner, _store_samples)
    try:
        assert (await _scrape()).value("echofs_store_chunks", worker="unit-a") == 3
        owner.chunks = 7  # state is read at scrape time, never copied earlier
        assert (await _scrape()).value("echofs_store_chunks", worker="unit-a") == 7
    finally:
        metrics.untrack(owner)
    assert (await _scrape()).value("echofs_store_chunks", worker="unit-a") is None


async def test_a_source_whose_owner_is_gone_leaves_no_stale_series():
    owner = Owner("unit-b", 1)
    metrics.track(owner, _store_samples)
    assert (await _scrape()).value("echofs_store_chunks", worker="unit-b") == 1
    del owner
    gc.collect()
    assert (await _scrape()).value("echofs_store_chunks", worker="unit-b") is None


async def test_a_failing_source_hides_only_its_own_series():
    good, bad = Owner("unit-good", 2), Owner("unit-bad", 5)

    async def broken(_owner: Owner) -> list[metrics.Sample]:
        raise ConnectionError("metadata store down")

    metrics.track(good, _store_samples)
    metrics.track(bad, _store_samples)
    try:
        assert (await _scrape()).value("echofs_store_chunks", worker="unit-bad") == 5
        metrics.track(bad, broken)
        scrape = await _scrape()
        assert scrape.value("echofs_store_chunks", worker="unit-good") == 2
        assert scrape.value("echofs_store_chunks", worker="unit-bad") is None
        assert "echofs_http_requests" in scrape.types
    finally:
        metrics.untrack(good)
        metrics.untrack(bad)


async def test_a_sample_of_an_undeclared_family_is_refused():
    owner = Owner("unit-c", 1)

    async def wrong(_owner: Owner) -> list[metrics.Sample]:
        return [("echofs_no_such_family", (), 1.0)]

    metrics.track(owner, wrong)
    try:
        with pytest.raises(ValueError, match="echofs_no_such_family"):
            await metrics.render()
    finally:
        metrics.untrack(owner)


async def test_every_state_family_is_exposed_even_with_no_source():
    scrape = await _scrape()
    for name in metrics.STATE_FAMILIES:
        assert scrape.types.get(name) == "gauge", name


def _store_count(worker: str, op: str, outcome: str) -> float:
    return REGISTRY.get_sample_value("echofs_chunk_store_operations_total",
                                     {"worker": worker, "op": op, "outcome": outcome}) or 0.0


@pytest.mark.parametrize(("error", "outcome"), [
    (None, "ok"), (ChunkMissing("gone"), "missing"), (OSError("disk"), "error"),
])
def test_store_operations_are_counted_and_timed_by_outcome(error, outcome):
    before = _store_count("unit-w", "get", outcome)
    timed_before = REGISTRY.get_sample_value(
        "echofs_chunk_store_operation_duration_seconds_count",
        {"worker": "unit-w", "op": "get"}) or 0.0
    if error is None:
        with metrics.store_operation("unit-w", "get"):
            pass
    else:
        with pytest.raises(type(error)), metrics.store_operation("unit-w", "get"):
            raise error
    assert _store_count("unit-w", "get", outcome) == before + 1
    assert REGISTRY.get_sample_value("echofs_chunk_store_operation_duration_seconds_count",
                                     {"worker": "unit-w", "op": "get"}) == timed_before + 1


@pytest.mark.parametrize("given", ["trace-42", "0f3a9c.b:7_x-Y", "a" * 128])
def test_plain_request_ids_are_kept(given):
    assert accept_request_id(given) == given


@pytest.mark.parametrize("given", [None, "", "two words", "line\nbreak", "é", "a" * 129,
                                   "x\x00y"])
def test_other_request_ids_are_replaced_by_fresh_ones(given):
    assert valid_request_id(given) is None
    fresh = accept_request_id(given)
    assert fresh != given and valid_request_id(fresh) == fresh
    assert accept_request_id(given) != fresh  # one per request


def test_grpc_method_names_split_into_service_and_method():
    assert split_method("/echofs.v1.WorkerService/PutChunk") == (
        "echofs.v1.WorkerService", "PutChunk")
    assert split_method("Odd") == ("unknown", "Odd")


def test_controller_families_appear_only_once_the_controller_registers_them():
    # In a fresh interpreter: the test process's registry is shared by every test.
    script = textwrap.dedent("""
        import asyncio
        from prometheus_client import REGISTRY, generate_latest
        from echofs.observability import metrics
        names = ("echofs_files_by_mode", "echofs_mode_transitions", "echofs_partition_risk")
        before = generate_latest(REGISTRY).decode()
        assert not any(n in before for n in names), before
        class Controller:
            pass

        async def samples(_owner):
            return [("echofs_partition_risk", (), 0.25),
                    ("echofs_files_by_mode", ("strong",), 7.0)]

        controller = Controller()
        metrics.track_controller(controller, samples)
        metrics.register_controller_metrics()  # a second controller start: no duplicate
        metrics.MODE_TRANSITIONS.labels("strong", "available", "emergency").inc()
        after = asyncio.run(metrics.render()).decode()
        assert all(f"# TYPE {n}" in after for n in names), after
        assert "echofs_partition_risk 0.25" in after, after
        assert 'echofs_files_by_mode{mode="strong"} 7.0' in after, after
        assert ('echofs_mode_transitions_total{from_mode="strong",reason="emergency",'
                'to_mode="available"} 1.0') in after, after
        metrics.untrack(controller)
        gone = asyncio.run(metrics.render()).decode()
        assert "echofs_partition_risk 0.25" not in gone, gone
        print("ok")
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr
