"""The malloc settings applied by ``echofs serve``."""

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


def test_freed_buffers_are_kept_on_glibc_and_defer_to_the_environment():
    code = "from echofs.memory import keep_freed_buffers; print(keep_freed_buffers())"
    applied = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env={"PATH": ""}, check=True)
    assert applied.stdout.strip() == "True"  # this machine runs glibc
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        chosen = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                env={name: "131072"}, check=True)
        assert chosen.stdout.strip() == "False"


def test_kept_buffers_spare_the_page_faults_of_fresh_ones():
    # A chunk buffer allocated and freed over and over: with freed memory
    # kept, the later ones reuse the first's pages instead of faulting in
    # 256 fresh ones each.
    code = """
import resource, sys
from echofs.memory import keep_freed_buffers
if sys.argv[1] == "keep":
    keep_freed_buffers()
data = bytes(1 << 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(200):
    copy = data[1:] + b"x"
    del copy
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""
    faults = {mode: int(subprocess.run([sys.executable, "-c", code, mode], capture_output=True,
                                       text=True, env={"PATH": ""}, check=True).stdout)
              for mode in ("default", "keep")}
    # 200 rounds of two fresh 1 MiB buffers fault ~100,000 pages; kept,
    # only the first few buffers' pages are faulted in.
    assert faults["keep"] * 20 < faults["default"], faults
