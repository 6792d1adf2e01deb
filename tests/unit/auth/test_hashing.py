"""The bounded password-hashing pool: never more than ``concurrency`` hashes
at once, a short queue, everything beyond refused at once, and a hash whose
caller gave up still holding its slot until it is done."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from echofs.auth.hashing import PasswordHashing
from echofs.core.errors import AuthBusy


class Gate:
    """Work that blocks its thread until released, counting how many run at once."""

    def __init__(self) -> None:
        self.open = threading.Event()
        self.running = 0
        self.most = 0
        self._lock = threading.Lock()

    def work(self, value: int) -> int:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.open.wait(5)
        with self._lock:
            self.running -= 1
        return value


async def test_at_most_concurrency_at_once_and_the_rest_refused_fast() -> None:
    hashing = PasswordHashing(concurrency=2, queue=3, max_wait=5)
    gate = Gate()
    try:
        tasks = [asyncio.create_task(hashing.run(gate.work, i)) for i in range(5)]
        await asyncio.sleep(0.1)
        assert hashing.admitted == 5
        started = time.perf_counter()
        with pytest.raises(AuthBusy) as refused:
            await hashing.run(gate.work, 99)
        assert time.perf_counter() - started < 0.05
        assert refused.value.status == 429 and refused.value.retry_after >= 1
        gate.open.set()
        assert await asyncio.gather(*tasks) == [0, 1, 2, 3, 4]
        assert gate.most == 2
        assert hashing.admitted == 0
    finally:
        gate.open.set()
        hashing.close()


async def test_a_queued_login_waits_at_most_max_wait() -> None:
    hashing = PasswordHashing(concurrency=1, queue=1, max_wait=0.2)
    gate = Gate()
    try:
        running = asyncio.create_task(hashing.run(gate.work, 1))
        await asyncio.sleep(0.05)
        started = time.perf_counter()
        with pytest.raises(AuthBusy):
            await hashing.run(gate.work, 2)
        assert 0.15 < time.perf_counter() - started < 1.0
        gate.open.set()
        assert await running == 1
    finally:
        gate.open.set()
        hashing.close()


async def test_a_caller_that_gives_up_keeps_the_slot_until_the_hash_is_done() -> None:
    hashing = PasswordHashing(concurrency=1, queue=4, max_wait=5)
    gate = Gate()
    try:
        abandoned = asyncio.create_task(hashing.run(gate.work, 1))
        await asyncio.sleep(0.05)
        abandoned.cancel()
        follower = asyncio.create_task(hashing.run(gate.work, 2))
        await asyncio.sleep(0.1)
        assert gate.running == 1  # the follower waits: the first hash still runs
        gate.open.set()
        assert await follower == 2
        assert gate.most == 1
    finally:
        gate.open.set()
        hashing.close()
