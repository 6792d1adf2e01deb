"""Process-wide memory settings for a long-running server.

glibc's malloc gives each thread that allocates its own arena (up to eight
per core), and memory freed in one arena is not reused by another. A server
whose chunk buffers are allocated in I/O threads and freed on the event loop
(or the reverse) spreads them over dozens of arenas, and its resident size
grows far past what it holds. Two arenas keep the footprint close to the live
data, at no measurable cost here (the threads spend their time in system
calls, not in malloc). The same as MALLOC_ARENA_MAX=2, which many Python
servers set in their environment; done here so every deployment gets it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import functools
import gc
import os
from collections.abc import Callable

_M_ARENA_MAX = -8  # from glibc's malloc.h
ARENAS = 2
# How often freed heap memory is handed back to the system.
TRIM_INTERVAL = 5.0


@functools.cache
def _glibc(name: str, *argtypes: type) -> Callable[..., int] | None:
    """A function of the C library this process already runs on, once looked
    up; None where it is not glibc (musl, macOS have no such function)."""
    try:
        function = getattr(ctypes.CDLL(None), name)
    except (OSError, AttributeError):
        return None
    function.argtypes = list(argtypes)
    function.restype = ctypes.c_int
    return function


def limit_malloc_arenas(arenas: int = ARENAS) -> bool:
    """Cap glibc's malloc arenas (before threads start); False where the C
    library is not glibc or the environment already chose a value."""
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    mallopt = _glibc("mallopt", ctypes.c_int, ctypes.c_int)
    return mallopt is not None and mallopt(_M_ARENA_MAX, arenas) == 1


# glibc's defaults: a freed block larger than 128 KiB goes back to the system
# at once (munmap), and so does free memory at the heap's top beyond a
# threshold that starts at 256 KiB and follows the largest block freed. Every
# 1 MiB chunk buffer of the data path (each read from a store, each gRPC
# message, each HTTP/2 frame built or parsed) was fresh memory: 256 page
# faults, each zeroing a page, before its first byte was copied. Measured on
# a process cluster's 64 MiB download, about two faults per byte's page in
# the master and three to four in the workers, a third of their CPU. Freed
# buffers are kept in the heap for reuse instead, up to these bounds, and
# :func:`trim_periodically` hands them back every few seconds.
_M_TRIM_THRESHOLD = -1  # from glibc's malloc.h
_M_MMAP_THRESHOLD = -3
# Blocks up to this size come from the heap (glibc's maximum, 32 MiB on
# 64-bit): every chunk buffer of the default chunk sizes.
HEAP_BLOCKS_UP_TO = 32 * 1024 * 1024
# Free memory kept at the heap's top between periodic trims.
KEEP_FREED = 32 * 1024 * 1024


def keep_freed_buffers() -> bool:
    """Reuse freed chunk buffers rather than fault fresh pages in for each;
    False where the C library is not glibc or the environment already chose."""
    if "MALLOC_TRIM_THRESHOLD_" in os.environ or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    mallopt = _glibc("mallopt", ctypes.c_int, ctypes.c_int)
    return (mallopt is not None and mallopt(_M_MMAP_THRESHOLD, HEAP_BLOCKS_UP_TO) == 1
            and mallopt(_M_TRIM_THRESHOLD, KEEP_FREED) == 1)


def _libc_trim() -> bool:
    trim = _glibc("malloc_trim", ctypes.c_size_t)
    return trim is not None and bool(trim(0))


async def trim_periodically(interval: float = TRIM_INTERVAL) -> None:
    """Hand freed heap pages back to the system now and then.

    After a large transfer the heap is full of freed chunk buffers; glibc
    keeps them (they are reused, so this is not a leak), and the resident
    size stays at the transfer's high-water mark. ``malloc_trim`` returns the
    free pages, including those between live blocks, in a few milliseconds;
    done in a thread, every few seconds, it costs nothing measurable.
    """
    while True:
        await asyncio.sleep(interval)
        with contextlib.suppress(Exception):
            await asyncio.to_thread(_libc_trim)


# The cyclic garbage collector, for a server that keeps many objects (the
# read memo, the controller's per-file state): a full collection walks every
# tracked object, and measured here it paused the event loop 100-150 ms every
# few thousand uploads, the p99 of small requests. What start-up created
# (modules, classes, schema) lives as long as the process: frozen, later
# collections never walk it again. Objects are still freed by reference
# counting as always; only collections run less often and walk less.
_GC_THRESHOLDS = (20_000, 20, 20)


def settle_garbage_collector() -> None:
    """Call once the server is ready."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*_GC_THRESHOLDS)
