"""Waiting for a write quorum (``until_quorum``), on a fake clock.

Puts are fake workers' ``put_chunk`` calls; the clock drives the event loop,
so the grace period is measured exactly and costs no wall time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from echofs.master.quorum import (
    GRACE_MAX,
    GRACE_MIN,
    POLL_INTERVAL,
    Puts,
    Substitutes,
    until_quorum,
)
from echofs.testing.fakes import FakeClock, FakeWorkerClient

CHUNK = "c" * 64
FRAME = b"frame"


@pytest.fixture
async def clock() -> AsyncIterator[FakeClock]:
    with FakeClock.installed() as installed:
        yield installed


def _workers(*ids: str) -> list[FakeWorkerClient]:
    return [FakeWorkerClient(w) for w in ids]


def _puts(workers: list[FakeWorkerClient]) -> Puts:
    return {asyncio.create_task(w.put_chunk(CHUNK, FRAME)): w.worker_id for w in workers}


async def _waiting(puts: Puts, needed: int, clock: FakeClock
                   ) -> asyncio.Task[tuple[list[str], dict[str, BaseException], Puts]]:
    waiting = asyncio.create_task(until_quorum(puts, needed))
    await clock.tick()
    return waiting


async def test_quorum_is_reached_while_a_target_hangs(clock):
    w1, w2, w3 = _workers("w1", "w2", "w3")
    w3.put.hang()
    puts = _puts([w1, w2, w3])
    waiting = await _waiting(puts, 2, clock)
    assert not waiting.done()  # quorum reached: the hung put gets its grace
    await clock.tick(GRACE_MIN)
    acked, errors, late = waiting.result()
    assert sorted(acked) == ["w1", "w2"]
    assert errors == {}
    # The hung put is handed back still running, not cancelled.
    assert list(late.values()) == ["w3"]
    (task,) = late
    assert not task.done()
    w3.put.release()
    await clock.tick()
    assert task.done() and task.exception() is None
    assert w3.frames == {CHUNK: FRAME}


async def test_a_put_landing_within_the_grace_counts_as_acknowledged(clock):
    w1, w2, w3 = _workers("w1", "w2", "w3")
    w3.put.hang()
    waiting = await _waiting(_puts([w1, w2, w3]), 2, clock)
    await clock.tick(GRACE_MIN / 2)
    w3.put.release()
    await clock.tick()
    acked, errors, late = waiting.result()
    assert sorted(acked) == ["w1", "w2", "w3"]
    assert (errors, late) == ({}, {})


@pytest.mark.parametrize(
    ("quorum_took", "grace"),
    [
        (0.0, GRACE_MIN),  # a fast quorum still leaves the others GRACE_MIN
        (0.3, 0.3),  # as long again as quorum took
        (30.0, GRACE_MAX),  # a slow quorum: never more than GRACE_MAX
    ],
)
async def test_the_grace_is_as_long_as_quorum_took_within_bounds(quorum_took, grace, clock):
    assert GRACE_MIN < 0.3 < GRACE_MAX
    w1, w2, w3 = _workers("w1", "w2", "w3")
    w2.put.hang()
    w3.put.hang()
    waiting = await _waiting(_puts([w1, w2, w3]), 2, clock)
    await clock.tick(quorum_took)
    w2.put.release()
    await clock.tick()
    assert not waiting.done()
    await clock.tick(grace * 0.99)
    assert not waiting.done()
    await clock.tick(grace * 0.02)
    acked, _, late = waiting.result()
    assert sorted(acked) == ["w1", "w2"]
    assert list(late.values()) == ["w3"]
    w3.put.release()
    await clock.tick()


async def test_too_many_failures_end_the_wait_at_once(clock):
    w1, w2, w3 = _workers("w1", "w2", "w3")
    w1.put.fail()
    w2.put.fail(TimeoutError())
    w3.put.hang()
    waiting = await _waiting(_puts([w1, w2, w3]), 2, clock)
    # No clock time passed: two failures of three make quorum impossible.
    acked, errors, late = waiting.result()
    assert acked == []
    assert {w: type(e) for w, e in errors.items()} == {
        "w1": ConnectionResetError, "w2": TimeoutError}
    assert list(late.values()) == ["w3"]  # no grace without a quorum
    w3.put.release()
    await clock.tick()


async def test_a_cancelled_put_counts_as_a_failure(clock):
    w1, w2 = _workers("w1", "w2")
    w1.put.hang()
    puts = _puts([w1, w2])
    waiting = await _waiting(puts, 2, clock)
    next(t for t, w in puts.items() if w == "w1").cancel()
    await clock.tick()
    acked, errors, late = waiting.result()
    assert acked == ["w2"]
    assert isinstance(errors["w1"], asyncio.CancelledError)
    assert late == {}


async def test_no_puts_and_nothing_needed_returns_at_once():
    assert await until_quorum({}, 0) == ([], {}, {})


# -- targets given up on while the wait lasts -----------------------------------------


async def test_a_target_given_up_on_is_replaced_and_the_quorum_reached_without_it(clock):
    """A target cut off before the master noticed: its put hangs. Once the
    membership says the master no longer hears from it, the wait cancels that
    put and sends the copy to a stand-in, instead of waiting out the write
    timeout and failing for want of a quorum."""
    w1, w2, w3, w4 = _workers("w1", "w2", "w3", "w4")
    w2.put.hang()
    w3.put.hang()
    silent: set[str] = set()
    substitutes = Substitutes(given_up=lambda w: w in silent,
                              stand_in=lambda w: _puts([w4]))
    puts = _puts([w1, w2, w3])
    hung = [t for t, w in puts.items() if w in ("w2", "w3")]
    waiting = asyncio.create_task(until_quorum(puts, 2, substitutes))
    await clock.tick(POLL_INTERVAL * 3)
    assert not waiting.done()  # nobody given up on yet: the wait goes on
    silent.add("w2")
    await clock.tick(POLL_INTERVAL)
    await clock.tick(GRACE_MAX)
    acked, errors, late = waiting.result()
    assert sorted(acked) == ["w1", "w4"]
    assert errors == {}
    assert substitutes.replaced == {"w2": "w4"}
    assert hung[0].cancelled()  # the put to the silent target does not linger
    assert list(late.values()) == ["w3"]  # merely slow: handed back as usual
    assert w4.frames == {CHUNK: FRAME}
    w3.put.release()
    await clock.tick()


async def test_with_no_stand_in_the_wait_goes_on_for_the_original(clock):
    w1, w2 = _workers("w1", "w2")
    w2.put.hang()
    asked: list[str] = []

    def nobody(worker_id: str) -> Puts:
        asked.append(worker_id)
        return {}

    substitutes = Substitutes(given_up=lambda w: w == "w2", stand_in=nobody)
    waiting = asyncio.create_task(until_quorum(_puts([w1, w2]), 2, substitutes))
    await clock.tick(POLL_INTERVAL * 5)
    assert not waiting.done()
    assert asked == ["w2"]  # asked once, not at every poll
    w2.put.release()
    await clock.tick()
    acked, _, _ = waiting.result()
    assert sorted(acked) == ["w1", "w2"]
    assert substitutes.replaced == {}
