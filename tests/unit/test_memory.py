"""The malloc arena cap applied by ``echofs serve``."""

from __future__ import annotations

import subprocess
import sys


def test_arena_cap_applies_on_glibc_and_defers_to_the_environment():
    code = "from echofs.memory import limit_malloc_arenas; print(limit_malloc_arenas())"
    applied = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={"PATH": ""}, check=True)
    assert applied.stdout.strip() == "True"  # this machine runs glibc
    chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={"MALLOC_ARENA_MAX": "4"}, check=True)
    assert chosen.stdout.strip() == "False"


async def test_periodic_trim_runs_and_stops_when_cancelled():
    import asyncio

    from echofs.memory import _libc_trim, trim_periodically

    assert _libc_trim() in (True, False)  # glibc here: runs without error
    task = asyncio.create_task(trim_periodically(interval=0.01))
    await asyncio.sleep(0.05)
    assert not task.done()  # a failing trim would not stop it either
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


def test_settling_the_collector_freezes_startup_objects_and_spaces_collections():
    import gc

    from echofs.memory import _GC_THRESHOLDS, settle_garbage_collector

    before = gc.get_threshold()
    try:
        settle_garbage_collector()
        assert gc.get_freeze_count() > 0
        assert gc.get_threshold() == _GC_THRESHOLDS
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
