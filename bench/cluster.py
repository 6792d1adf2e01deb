#!/usr/bin/env python3
"""Throughput and re-replication on a real process cluster (master + workers
as separate `echofs serve` processes on loopback, chunks over gRPC).

    python bench/cluster.py transfer --size-mib 300          # RF=3, 3 workers
    python bench/cluster.py rereplicate --size-mib 1024      # 4 workers, kill one

`transfer` streams an incompressible file up and down through the master and
checks the bytes. `rereplicate` stores a file at RF=3 on four workers,
kill -9s one, and times until every chunk has three copies again, asking each
surviving worker over gRPC what it holds. The cluster runs with short
failure-detection timeouts (DEAD_AFTER=3 s); the report separates detection
from copying.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import blake3

from echofs.client import AsyncClient
from echofs.testing.cluster import ProcessCluster
from echofs.testing.http import pattern_digest, pattern_stream

MIB = 1024 * 1024
DEAD_AFTER = 3.0


async def upload(url: str, size: int) -> tuple[str, float]:
    async with AsyncClient(url, read_timeout=300) as client:
        started = time.perf_counter()
        uploaded = await client.upload(pattern_stream(size), "bench.bin", size=size)
        return uploaded.file_id, time.perf_counter() - started


async def transfer(root: Path, size: int) -> dict[str, float]:
    with ProcessCluster(root) as cluster:
        file_id, up = await upload(cluster.url, size)
        async with AsyncClient(cluster.url, read_timeout=300) as client:
            started = time.perf_counter()
            hasher, received = blake3.blake3(), 0
            async with client.stream(file_id) as download:
                async for piece in download:
                    hasher.update(piece)
                    received += len(piece)
            down = time.perf_counter() - started
        if (received, hasher.hexdigest()) != (size, pattern_digest(size)):
            raise SystemExit("downloaded bytes differ from the upload")
    return {"upload_mb_s": size / MIB / up, "download_mb_s": size / MIB / down,
            "upload_s": up, "download_s": down}


async def rereplicate(root: Path, size: int) -> dict[str, float]:
    env = {"DEAD_AFTER": str(DEAD_AFTER)}
    with ProcessCluster(root, workers=4, env=env) as cluster:
        file_id, _ = await upload(cluster.url, size)
        async with AsyncClient(cluster.url) as client:
            chunks = {c.chunk_id for c in (await client.stat(file_id)).chunks}
        held = {w: await cluster.chunks_on(w) for w in cluster.workers}
        victim = max(held, key=lambda w: len(held[w] & chunks))
        lost = len(held[victim] & chunks)
        cluster.kill_worker(victim)
        killed = time.perf_counter()
        survivors = [w for w in cluster.workers if w != victim]
        while True:
            copies: Counter[str] = Counter()
            for worker_id in survivors:
                copies.update(await cluster.chunks_on(worker_id) & chunks)
            if all(copies[c] >= 3 for c in chunks):
                break
            if time.perf_counter() - killed > 600:
                raise SystemExit("re-replication did not finish within 10 minutes")
            await asyncio.sleep(0.2)
        total = time.perf_counter() - killed
    copied_mib = lost * size / len(chunks) / MIB
    return {"chunks_lost_with_worker": lost, "mib_recopied": copied_mib, "total_s": total,
            "detection_s": DEAD_AFTER, "copy_s": total - DEAD_AFTER,
            "copy_mb_s": copied_mib / max(total - DEAD_AFTER, 1e-9)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("what", choices=("transfer", "rereplicate"))
    parser.add_argument("--size-mib", type=int, default=300)
    args = parser.parse_args()
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="echofs-bench-") as tmp:
        run = transfer if args.what == "transfer" else rereplicate
        result = asyncio.run(run(Path(tmp), size))
    print(json.dumps({"bench": args.what, "size_mib": args.size_mib,
                      **{k: round(v, 3) for k, v in result.items()}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
