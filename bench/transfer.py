#!/usr/bin/env python3
"""Upload and download one large file through a real `echofs serve` process.

Reports MB/s each way and the server's RSS growth (memory must stay flat
whatever the file size). Rerun:

    python bench/transfer.py --size-mib 300
    python bench/transfer.py --size-mib 1024 --chunk-size 1MiB

The file is generated on the fly (incompressible) so the client holds no
copy; the download is hashed as it streams and compared.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import blake3

from echofs.client import AsyncClient
from echofs.testing.http import pattern_digest, pattern_stream
from echofs.testing.process import PeakRSS, ServeProcess

MIB = 1024 * 1024


async def run(size: int, url: str) -> dict[str, float]:
    async with AsyncClient(url, read_timeout=120) as client:
        started = time.perf_counter()
        uploaded = await client.upload(pattern_stream(size), "bench/large.bin", size=size)
        upload_s = time.perf_counter() - started
        hasher, received = blake3.blake3(), 0
        started = time.perf_counter()
        async with client.stream(uploaded.file_id) as download:
            async for piece in download:
                hasher.update(piece)
                received += len(piece)
        download_s = time.perf_counter() - started
    ok = received == size and hasher.hexdigest() == pattern_digest(size)
    if not ok:
        raise SystemExit("downloaded bytes differ from the upload")
    return {"upload_s": upload_s, "download_s": download_s,
            "upload_mb_s": size / MIB / upload_s, "download_mb_s": size / MIB / download_s}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mib", type=int, default=300)
    parser.add_argument("--chunk-size", default=None)
    parser.add_argument("--replication-factor", default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    extra = []
    if args.chunk_size:
        extra += ["--chunk-size", args.chunk_size]
    if args.replication_factor:
        extra += ["--replication-factor", args.replication_factor]
    size = args.size_mib * MIB
    with tempfile.TemporaryDirectory(prefix="echofs-bench-") as tmp, \
            ServeProcess(Path(tmp) / "data", *extra) as server:
        with PeakRSS(server.proc.pid) as rss:  # type: ignore[union-attr]
            result = asyncio.run(run(size, server.url))
        result.update(size_mib=args.size_mib, rss_baseline_mb=rss.baseline / MIB,
                      rss_peak_mb=rss.peak / MIB, rss_growth_mb=rss.growth / MIB)
    if args.json:
        print(json.dumps(result))
    else:
        print(f"{args.size_mib} MiB: upload {result['upload_mb_s']:.0f} MB/s "
              f"({result['upload_s']:.2f} s), download {result['download_mb_s']:.0f} MB/s "
              f"({result['download_s']:.2f} s); server RSS {result['rss_baseline_mb']:.0f} → "
              f"peak {result['rss_peak_mb']:.0f} MiB (+{result['rss_growth_mb']:.0f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
