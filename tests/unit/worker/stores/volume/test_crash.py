"""Real crashes: a child process writes to a volume store and is killed
(SIGKILL at random moments, or ``os._exit`` inside each compaction step).
After each, the store is opened again here: every put the child saw
acknowledged reads back exact, every acknowledged delete stays deleted, and
nothing torn or half-compacted is ever served."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from echofs.core.chunk_codec import decode_chunk

# The child prints "P <id>" once a put returned and "D <id>" once a delete
# did: what it prints is exactly what was acknowledged. "d <id>" before a
# delete: one in flight at the kill may or may not have happened.
_WRITER = textwrap.dedent('''
    import asyncio, os, random, sys
    from pathlib import Path
    from echofs.core.chunk_codec import encode_chunk
    from echofs.worker.stores.volume import VolumeChunkStore

    async def main(root, seed):
        store = VolumeChunkStore(Path(root), volume_size=192 * 1024, compact_ratio=0.3)
        await store.open()
        rng = random.Random(seed)
        acked = []

        async def writer(k):
            i = 0
            while True:
                size = rng.choice([100, 3000, 20000, 70000])
                enc = encode_chunk(f"{seed}/{k}/{i}".encode() + os.urandom(size))
                await store.put(enc.chunk_id, enc.frame)
                print("P", enc.chunk_id, flush=True)
                acked.append(enc.chunk_id)
                if i % 3 == 2 and acked:
                    victim = acked.pop(rng.randrange(len(acked)))
                    print("d", victim, flush=True)
                    if await store.delete(victim):
                        print("D", victim, flush=True)
                i += 1

        await asyncio.gather(*(writer(k) for k in range(8)))

    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
''')

_COMPACTION_CRASH = textwrap.dedent('''
    import asyncio, os, sys
    from pathlib import Path
    from echofs.core.chunk_codec import encode_chunk
    from echofs.worker.stores.volume import VolumeChunkStore, compaction, index, store

    STEP = sys.argv[2]

    def die_after(module, name):
        real = getattr(module, name)
        def step(*args, **kwargs):
            result = real(*args, **kwargs)
            os._exit(1)
        setattr(module, name, step)

    def die_before(module, name):
        def step(*args, **kwargs):
            os._exit(1)
        setattr(module, name, step)

    async def main(root):
        s = VolumeChunkStore(Path(root), volume_size=32 * 1024, compact_ratio=0.4)
        await s.open()
        chunks = [encode_chunk(f"{STEP}/{i}".encode() + os.urandom(3000)) for i in range(40)]
        for enc in chunks:
            await s.put(enc.chunk_id, enc.frame)
            print("P", enc.chunk_id, flush=True)
        s.compact_ratio = 2.0  # no compaction yet: first every delete, acknowledged
        for enc in chunks[::2]:
            if await s.delete(enc.chunk_id):
                print("D", enc.chunk_id, flush=True)
        s.compact_ratio = 0.4
        if STEP == "write":
            die_after(compaction, "write_generation")  # temp file written, not renamed
        elif STEP == "publish":
            die_after(compaction, "publish")  # both generations on disk
        elif STEP == "remove":
            die_before(compaction, "remove_old")  # index switched in memory only
        elif STEP == "removed":
            die_after(compaction, "remove_old")  # old gone, snapshot still names it
        elif STEP == "snapshot":
            die_after(store, "write_snapshot")  # a snapshot of the compacted volumes
        await s.compact()
        print("END", flush=True)
        os._exit(0)

    asyncio.run(main(sys.argv[1]))
''')


def _child(script: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", script, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)


def _acknowledged(output: str, live: set[str], deleted: set[str]) -> None:
    for line in output.splitlines():
        kind, _, chunk_id = line.partition(" ")
        if len(chunk_id) != 64:
            continue  # a line cut by the kill
        if kind == "P":
            live.add(chunk_id)
        elif kind == "d":
            live.discard(chunk_id)  # deleted or not: whole if still there
        elif kind == "D":
            live.discard(chunk_id)
            deleted.add(chunk_id)


async def _check(root: Path, live: set[str], deleted: set[str]) -> None:
    from echofs.worker.stores.volume import VolumeChunkStore

    store = VolumeChunkStore(root, volume_size=192 * 1024)
    await store.open()
    try:
        for chunk_id in live:
            decode_chunk(await store.get(chunk_id), chunk_id)  # raises unless exact
        for chunk_id in deleted:
            assert not await store.has(chunk_id), chunk_id
        # Whatever else is there (puts in flight at the kill) is whole too.
        listed = [i async for i in store.list_ids()]
        for chunk_id in listed:
            decode_chunk(await store.get(chunk_id), chunk_id)
        usage = await store.usage()
        assert usage.chunk_count == len(listed)
    finally:
        await store.close()


@pytest.mark.parametrize("seed", [1, 2])
async def test_kill_9_loses_no_acknowledged_write(tmp_path: Path, seed: int) -> None:
    root = tmp_path / "store"
    rng = random.Random(seed)
    live: set[str] = set()
    deleted: set[str] = set()
    for round_ in range(4):
        child = _child(_WRITER, str(root), str(seed * 100 + round_))
        await asyncio.sleep(rng.uniform(0.4, 1.2))
        child.send_signal(signal.SIGKILL)
        output, _ = await asyncio.to_thread(child.communicate)
        assert child.returncode == -signal.SIGKILL
        before = len(live)
        _acknowledged(output, live, deleted)
        assert len(live) > before or round_ > 0
        await _check(root, live, deleted)
    assert len(live) > 50 and deleted


@pytest.mark.parametrize("step", ["write", "publish", "remove", "removed", "snapshot"])
async def test_a_crash_in_each_compaction_step_loses_nothing(tmp_path: Path, step: str) -> None:
    root = tmp_path / "store"
    child = _child(_COMPACTION_CRASH, str(root), step)
    output, _ = await asyncio.to_thread(child.communicate, timeout=60)
    assert child.returncode == 1, f"step {step} was never reached:\n{output[-300:]}"
    live: set[str] = set()
    deleted: set[str] = set()
    _acknowledged(output, live, deleted)
    assert len(live) == 20 and len(deleted) == 20
    await _check(root, live, deleted)
    names = sorted(p.name for p in (root / "volumes").iterdir())
    assert not [n for n in names if n.endswith(".tmp")], names
    # and compaction completes on a later open
    from echofs.worker.stores.volume import VolumeChunkStore

    store = VolumeChunkStore(root, volume_size=32 * 1024, compact_ratio=0.4)
    await store.open()
    try:
        await store.compact()
        for chunk_id in live:
            decode_chunk(await store.get(chunk_id), chunk_id)
        assert {i async for i in store.list_ids()} == live
    finally:
        await store.close()
    await _check(root, live, deleted)


def test_the_children_really_run(tmp_path: Path) -> None:
    """Guards the two tests above against a child that dies at once (an
    import error would make 'nothing acknowledged, nothing lost' pass)."""
    child = _child(_WRITER, str(tmp_path / "s"), "7")
    time.sleep(1.0)
    child.kill()
    output, _ = child.communicate()
    assert output.count("P ") > 20
    os.sync()
