"""``echofs bench throughput``: EchoFS against what this machine can do, in one run.

The same load generator (aiohttp, streamed bodies) drives every target:

- the embedded node (``echofs serve``) at RF=1 and RF=3,
- a process cluster (master + 3 workers over gRPC) at RF=3,
- nginx on loopback with WebDAV PUT enabled (:mod:`echofs.bench.nginx_peer`),
- OpenStack Swift all-in-one on loopback, three replicas
  (:mod:`echofs.bench.swift_peer`; left out with ``--no-swift``),
- and the raw disk (``dd ... conv=fdatasync`` to write, a cached read).

Each EchoFS figure is reported as a ratio to nginx's and to Swift's
(:mod:`echofs.bench.throughput_report`): absolute numbers drift on shared
machines, ratios measured in the same run much less.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import blake3
import psutil

from echofs.bench import swift_peer
from echofs.bench.nginx_peer import nginx
from echofs.bench.target import Target
from echofs.bench.throughput_report import render_markdown
from echofs.testing.cluster import ProcessCluster
from echofs.testing.process import PeakRSS, ServeProcess

MIB = 1024 * 1024
# What a cluster's master sends to its workers (the write pipeline's metric).
EGRESS_METRIC = "echofs_master_chunk_bytes_sent_total"


@dataclass(frozen=True)
class Profile:
    large_files: int = 16
    large_mib: int = 64
    concurrency: int = 4
    small_ops: int = 2000
    small_concurrency: int = 16
    rss_upload_mib: int = 2048
    latency_runs: int = 10


QUICK = Profile(large_files=4, large_mib=16, small_ops=300, rss_upload_mib=128,
                latency_runs=3)


def _progress(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


async def _pattern(size: int, seed: str) -> AsyncIterator[bytes]:
    sent, index = 0, 0
    while sent < size:
        n = min(MIB, size - sent)
        yield blake3.blake3(f"{seed}:{index}".encode()).digest(length=n)
        sent += n
        index += 1


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _put(session: aiohttp.ClientSession, url: str, data: Any,
               headers: Mapping[str, str]) -> None:
    async with session.put(url, data=data, headers=headers) as resp:
        if resp.status not in (200, 201, 204):
            raise RuntimeError(f"PUT {url}: {resp.status} {(await resp.text())[:200]}")
        await resp.read()


async def _get(session: aiohttp.ClientSession, url: str, headers: Mapping[str, str]) -> int:
    total = 0
    async with session.get(url, headers=headers) as resp:
        if resp.status != 200:
            raise RuntimeError(f"GET {url}: {resp.status}")
        async for piece in resp.content.iter_chunked(MIB):
            total += len(piece)
    return total


async def _bounded(concurrency: int, jobs: list[Any]) -> list[Any]:
    slots = asyncio.Semaphore(concurrency)

    async def run(job: Any) -> Any:
        async with slots:
            return await job

    return await asyncio.gather(*(run(j) for j in jobs))


def _session() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        timeout=aiohttp.ClientTimeout(total=None, sock_read=300),
        connector=aiohttp.TCPConnector(limit=64))


def _cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


async def _chunk_egress(session: aiohttp.ClientSession, target: Target) -> float:
    """Bytes of chunk frames the master has sent to workers, by every path
    (``echofs_master_chunk_bytes_sent_total``, summed over its labels)."""
    async with session.get(target.base_url + "/metrics") as response:
        text = await response.text()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(EGRESS_METRIC + "{"))


async def large_transfer(target: Target, profile: Profile) -> dict[str, float]:
    size = profile.large_mib * MIB
    names = [f"large-{i}.bin" for i in range(profile.large_files)]
    total = size * len(names) / MIB
    figures: dict[str, float] = {}
    async with _session() as session:
        # The master's own cost of an upload (EchoFS targets: pids[0] is the
        # master): CPU seconds, and for a cluster all its members' CPU and the
        # chunk bytes the master sends.
        cpu = _cpu_seconds(target.pids[0]) if target.master else 0.0
        cpu_all = sum(map(_cpu_seconds, target.pids)) if target.cluster else 0.0
        egress = await _chunk_egress(session, target) if target.cluster else 0.0
        started = time.perf_counter()
        await _bounded(profile.concurrency, [
            _put(session, target.put_url(n), _pattern(size, n), target.headers) for n in names])
        up = time.perf_counter() - started
        if target.master:
            figures["upload_master_cpu_s_per_gib"] = (
                (_cpu_seconds(target.pids[0]) - cpu) / (total / 1024))
        if target.cluster:
            # Every member's CPU: on a small machine their sum, not the
            # master's share, is what bounds a cluster's upload rate.
            figures["upload_cluster_cpu_s_per_gib"] = (
                (sum(map(_cpu_seconds, target.pids)) - cpu_all) / (total / 1024))
            figures["upload_master_egress_per_mib"] = (
                (await _chunk_egress(session, target) - egress) / MIB / total)
        started = time.perf_counter()
        sizes = await _bounded(profile.concurrency, [
            _get(session, target.get_url(n), target.headers) for n in names])
        down = time.perf_counter() - started
    if any(s != size for s in sizes):
        raise RuntimeError(f"{target.name}: a download returned the wrong size")
    return {"upload_mb_s": total / up, "download_mb_s": total / down, **figures}


async def small_ops(target: Target, profile: Profile) -> dict[str, float]:
    names = [f"small/{i}.bin" for i in range(profile.small_ops)]
    # Distinct bytes per file: one payload for all would let EchoFS
    # deduplicate every upload after the first and store nothing.
    payloads = [os.urandom(4096) for _ in names]
    put_lat: list[float] = []
    get_lat: list[float] = []

    async def timed(coro: Any, sink: list[float]) -> None:
        started = time.perf_counter()
        await coro
        sink.append(time.perf_counter() - started)

    async with _session() as session:
        started = time.perf_counter()
        await _bounded(profile.small_concurrency, [
            timed(_put(session, target.put_url(n), p, target.headers), put_lat)
            for n, p in zip(names, payloads, strict=True)])
        put_s = time.perf_counter() - started
        started = time.perf_counter()
        await _bounded(profile.small_concurrency, [
            timed(_get(session, target.get_url(n), target.headers), get_lat)
            for n in names])
        get_s = time.perf_counter() - started
    return {
        "put_ops_s": len(names) / put_s, "put_p50_ms": _percentile(put_lat, 0.5) * 1000,
        "put_p99_ms": _percentile(put_lat, 0.99) * 1000,
        "get_ops_s": len(names) / get_s, "get_p50_ms": _percentile(get_lat, 0.5) * 1000,
        "get_p99_ms": _percentile(get_lat, 0.99) * 1000,
    }


async def latency_10mib(target: Target, profile: Profile) -> dict[str, float]:
    ups, downs = [], []
    async with _session() as session:
        for i in range(profile.latency_runs):
            name = f"lat-{i}.bin"
            data = os.urandom(10 * MIB)
            started = time.perf_counter()
            await _put(session, target.put_url(name), data, target.headers)
            ups.append(time.perf_counter() - started)
            started = time.perf_counter()
            await _get(session, target.get_url(name), target.headers)
            downs.append(time.perf_counter() - started)
    return {"upload_ms": statistics.median(ups) * 1000,
            "download_ms": statistics.median(downs) * 1000}


async def peak_rss_upload(target: Target, profile: Profile) -> dict[str, float]:
    size = profile.rss_upload_mib * MIB
    with PeakRSS(target.pids[0]) as rss:
        async with _session() as session:
            await _put(session, target.put_url("rss.bin"), _pattern(size, "rss"),
                       target.headers)
    return {"upload_mib": profile.rss_upload_mib, "rss_baseline_mb": rss.baseline / MIB,
            "rss_peak_mb": rss.peak / MIB}


# -- the targets -------------------------------------------------------------------


@contextlib.contextmanager
def embedded(root: Path, replication_factor: int) -> Iterator[Target]:
    with ServeProcess(root / "data", "--replication-factor", str(replication_factor),
                      name=f"embedded-rf{replication_factor}") as server:
        assert server.proc is not None
        yield Target(f"echofs embedded RF={replication_factor}", server.url,
                     "/api/v1/files/content/{name}", "/api/v1/files/content/{name}",
                     [server.proc.pid], master=True)


@contextlib.contextmanager
def cluster(root: Path) -> Iterator[Target]:
    # Ordinary timeouts here: this measures speed, not failure handling.
    env = {"SUSPECT_AFTER": "3", "DEAD_AFTER": "30", "SCRUB_INTERVAL": "30",
           "GC_GRACE_SECONDS": "3600", "SWEEP_INTERVAL": "600"}
    with ProcessCluster(root, workers=3, env=env) as c:
        assert c.master.proc is not None
        # The master first, then every other member, for the CPU figures.
        others = [p.proc.pid for p in (c.controller, *c.workers.values())
                  if p is not None and p.proc is not None]
        yield Target("echofs cluster RF=3", c.url, "/api/v1/files/content/{name}",
                     "/api/v1/files/content/{name}", [c.master.proc.pid, *others],
                     master=True, cluster=True)


def disk(root: Path, mib: int) -> dict[str, float]:
    """The disk's own speed: a synced sequential write, then a read."""
    path = root / "dd.bin"
    started = time.perf_counter()
    subprocess.run(["dd", "if=/dev/zero", f"of={path}", "bs=1M", f"count={mib}",
                    "conv=fdatasync", "status=none"], check=True)
    write = mib / (time.perf_counter() - started)
    started = time.perf_counter()
    subprocess.run(["dd", f"if={path}", "of=/dev/null", "bs=1M", "status=none"], check=True)
    read = mib / (time.perf_counter() - started)
    path.unlink()
    return {"write_mb_s": write, "read_mb_s": read}


# -- the run ------------------------------------------------------------------------


async def _measure(target: Target, profile: Profile, *, small: bool, rss: bool,
                   latency: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"large": await large_transfer(target, profile)}
    _progress(f"{target.name}: large {result['large']['upload_mb_s']:.0f} MB/s up, "
              f"{result['large']['download_mb_s']:.0f} MB/s down")
    if small:
        result["small"] = await small_ops(target, profile)
        _progress(f"{target.name}: 4 KiB {result['small']['put_ops_s']:.0f} PUT/s, "
                  f"{result['small']['get_ops_s']:.0f} GET/s")
    if latency:
        result["latency_10mib"] = await latency_10mib(target, profile)
    if rss:
        result["rss"] = await peak_rss_upload(target, profile)
        _progress(f"{target.name}: RSS peak {result['rss']['rss_peak_mb']:.0f} MB during a "
                  f"{profile.rss_upload_mib} MiB upload")
    return result


def run(profile: Profile, work_dir: Path, *, swift: bool = True) -> dict[str, Any]:
    if swift:
        # Before anything is measured: a missing Swift should not cost a run.
        swift_peer.require_installed()
    results: dict[str, Any] = {"profile": profile.__dict__, "machine": {
        "cpus": os.cpu_count(), "python": platform.python_version(),
        "platform": platform.platform()}}
    _progress("raw disk")
    results["disk"] = disk(work_dir, profile.large_files * profile.large_mib)
    with nginx(work_dir / "nginx") as target:
        _progress("nginx (WebDAV PUT, GET)")
        results["nginx"] = asyncio.run(_measure(target, profile, small=True, rss=False,
                                                latency=True))
    if swift:
        with swift_peer.swift(work_dir / "swift") as target:
            version = swift_peer.version()
            _progress(f"OpenStack Swift {version} ({swift_peer.REPLICAS} replicas, PUT, GET)")
            results["swift"] = {"version": version, **asyncio.run(
                _measure(target, profile, small=True, rss=False, latency=True))}
    with embedded(work_dir / "rf1", 1) as target:
        results["embedded_rf1"] = asyncio.run(_measure(target, profile, small=False,
                                                       rss=False, latency=False))
    with embedded(work_dir / "rf3", 3) as target:
        results["embedded_rf3"] = asyncio.run(_measure(target, profile, small=True, rss=True,
                                                       latency=True))
    with cluster(work_dir / "cluster") as target:
        results["cluster_rf3"] = asyncio.run(_measure(target, profile, small=True,
                                                      rss=False, latency=True))
    return results


def run_from_args(args: argparse.Namespace) -> int:
    profile = QUICK if args.quick else Profile()
    command = " ".join(["echofs bench throughput", *(["--quick"] if args.quick else []),
                        *(["--no-swift"] if args.no_swift else [])])
    with tempfile.TemporaryDirectory(prefix="echofs-throughput-",
                                     dir=args.work_dir) as tmp:
        results = run(profile, Path(tmp), swift=not args.no_swift)
    args.markdown.parent.mkdir(parents=True, exist_ok=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n")
    args.markdown.write_text(render_markdown(results, command))
    _progress(f"wrote {args.markdown} and {args.json}")
    return 0
