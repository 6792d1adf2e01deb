"""The chaos benchmark's workload and its loss check.

:class:`Workload` runs several concurrent clients against one master at a set
total rate (open loop: each client starts its operations on schedule, not
when the previous one returns): writes (raw PUT to a path) and reads (GET by
path) over a fixed
set of names, small and large, so the same names are overwritten again and
again. Every operation is recorded with its real-time interval, what the
server answered (status, version, mode, stale flag) and the digest of the
bytes — the history the checker (:mod:`echofs.bench.history`) judges.

:func:`verify_acknowledged` reads back every acknowledged write after the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import aiohttp
import blake3

from echofs.bench import history

KIB = 1024
MIB = 1024 * 1024


@dataclass(frozen=True)
class WorkloadConfig:
    clients: int = 4
    rate: float = 20.0  # operations per second, all clients together
    write_share: float = 0.5
    small_names: int = 20
    large_names: int = 4
    small_size: int = 4 * KIB
    large_size: int = MIB
    timeout: float = 15.0  # per operation; a slower one counts as failed
    max_inflight: int = 200  # per client; beyond it an operation is not sent (failed)
    seed: int = 1

    def __post_init__(self) -> None:
        if self.clients < 1 or self.rate <= 0:
            raise ValueError("a workload needs at least one client and a positive rate")
        if not 0.0 <= self.write_share <= 1.0:
            raise ValueError("write_share must be between 0 and 1")
        if self.small_names + self.large_names < 1:
            raise ValueError("a workload needs at least one name")


@dataclass
class Op:
    """One operation as the client saw it."""

    kind: str  # write | read
    name: str
    size: int
    phase: str
    started: float  # seconds on the workload's clock
    ended: float = 0.0
    ok: bool = False
    status: int | None = None
    error: str | None = None  # HTTP error code, or the exception's type
    version: int | None = None
    mode: str | None = None
    stale: bool = False
    digest: str = ""  # of the bytes sent (write) or received (read)
    file_id: str | None = None

    @property
    def latency(self) -> float:
        return self.ended - self.started

    def to_json(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class Workload:
    def __init__(self, http: aiohttp.ClientSession, config: WorkloadConfig, prefix: str) -> None:
        self.http = http
        self.config = config
        self.prefix = prefix
        self.names = ([f"{prefix}/s{i:03d}.bin" for i in range(config.small_names)]
                      + [f"{prefix}/l{i:03d}.bin" for i in range(config.large_names)])
        self.large = {n for n in self.names if "/l" in n}
        self.ops: list[Op] = []
        self.phase = "seed"
        self.zero = time.monotonic()
        self.wall_zero = time.time()
        self.file_ids: dict[str, str] = {}
        self._readable: list[str] = []
        self._random = random.Random(config.seed)
        self._stop = asyncio.Event()
        self._clients: list[asyncio.Task[None]] = []

    def now(self) -> float:
        return time.monotonic() - self.zero

    def wall(self, at: float) -> float:
        """Wall-clock time of an instant of the workload's clock."""
        return self.wall_zero + at

    # -- running ---------------------------------------------------------------

    async def seed(self) -> None:
        """One write per name, so every read has something to find."""
        self.phase = "seed"
        limit = asyncio.Semaphore(self.config.clients)

        async def one(name: str) -> None:
            async with limit:
                await self.write(name)

        await asyncio.gather(*(one(n) for n in self.names))

    def start(self) -> None:
        self._stop.clear()
        interval = self.config.clients / self.config.rate
        self._clients = [asyncio.create_task(self._client(i, interval), name=f"client-{i}")
                         for i in range(self.config.clients)]

    async def stop(self) -> None:
        """Stop issuing operations and wait for those in flight."""
        self._stop.set()
        await asyncio.gather(*self._clients)
        self._clients = []

    async def _client(self, index: int, interval: float) -> None:
        """Open loop: operations start on schedule whether or not earlier ones
        have finished. A closed loop would stop sending while its requests
        hang — exactly when the fault is on — and so under-count the failures
        and slow operations a fault causes."""
        rng = random.Random(self.config.seed * 1000 + index)
        loop = asyncio.get_running_loop()
        next_at = loop.time() + rng.uniform(0, interval)
        inflight: set[asyncio.Task[Op]] = set()
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), max(0.0, next_at - loop.time()))
            if self._stop.is_set():
                break
            next_at += interval
            if len(inflight) >= self.config.max_inflight:
                # Not sent: the system is that far behind. Counted as failed.
                op = Op("write", rng.choice(self.names), 0, self.phase, self.now())
                op.ended, op.error = op.started, "client_backlog"
                self.ops.append(op)
                continue
            if rng.random() < self.config.write_share or not self._readable:
                task = asyncio.create_task(self.write(rng.choice(self.names)))
            else:
                task = asyncio.create_task(self.read(rng.choice(self._readable)))
            inflight.add(task)
            task.add_done_callback(inflight.discard)
        await asyncio.gather(*inflight)

    def _url(self, name: str) -> str:
        return f"/api/v1/files/content/{quote(name)}"

    def _timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.config.timeout)

    async def write(self, name: str) -> Op:
        size = self.config.large_size if name in self.large else self.config.small_size
        data = os.urandom(size)
        op = Op("write", name, size, self.phase, self.now(), digest=blake3.blake3(data).hexdigest())
        self.ops.append(op)
        try:
            async with self.http.put(self._url(name), data=data, timeout=self._timeout()) as resp:
                op.status = resp.status
                op.mode = resp.headers.get("X-EchoFS-Mode")
                body = await _json(resp)
            op.ended = self.now()
            if resp.status == 201 and body.get("blake3") == op.digest:
                op.ok, op.version, op.file_id = True, int(body["version"]), str(body["file_id"])
                self.file_ids[name] = op.file_id
                if name not in self._readable:
                    self._readable.append(name)
            elif resp.status == 201:
                op.error = "digest_mismatch"  # stored bytes are not what we sent
            else:
                op.error = _error_code(body, resp.status)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            op.ended, op.error = self.now(), type(exc).__name__
        return op

    async def read(self, name: str) -> Op:
        op = Op("read", name, 0, self.phase, self.now())
        self.ops.append(op)
        try:
            async with self.http.get(self._url(name), timeout=self._timeout()) as resp:
                op.status = resp.status
                op.mode = resp.headers.get("X-EchoFS-Mode")
                if resp.status == 200:
                    data = await resp.read()
                    op.ended = self.now()
                    op.size, op.digest = len(data), blake3.blake3(data).hexdigest()
                    op.version = int(resp.headers["X-EchoFS-Version"])
                    op.stale = resp.headers.get("X-EchoFS-Stale") == "true"
                    op.ok = resp.content_length in (None, len(data))
                    if not op.ok:
                        op.error = "short_body"
                else:
                    op.error = _error_code(await _json(resp), resp.status)
                    op.ended = self.now()
        except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as exc:
            op.ended, op.error = self.now(), type(exc).__name__
        return op

    # -- the history ---------------------------------------------------------------

    def history(self) -> tuple[list[history.Write], list[history.Read]]:
        """Writes (every one: an unacknowledged write may still have landed)
        and successful reads, for :func:`echofs.bench.history.check`."""
        writes = [history.Write(o.name, o.started, o.ended, o.digest, o.ok, o.version)
                  for o in self.ops if o.kind == "write"]
        reads = [history.Read(o.name, o.started, o.ended, o.version or 0, o.mode or "",
                              o.digest, o.stale)
                 for o in self.ops if o.kind == "read" and o.ok]
        return writes, reads


async def _json(resp: aiohttp.ClientResponse) -> dict[str, Any]:
    try:
        body = await resp.json(content_type=None)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _error_code(body: dict[str, Any], status: int) -> str:
    error = body.get("error")
    code = error.get("code") if isinstance(error, dict) else None
    return f"{status} {code}" if code else str(status)


# -- the loss check ------------------------------------------------------------------


@dataclass
class LossReport:
    acknowledged: int = 0  # acknowledged writes
    verified: int = 0  # read back byte-exact
    superseded: int = 0  # older versions pruned by VERSIONS_KEPT: not lost
    # Listed versions made by writes whose acknowledgement never reached us
    # (the client gave up, the server committed): their bytes must still be
    # bytes we sent.
    unacknowledged_verified: int = 0
    lost: list[dict[str, Any]] = field(default_factory=list)  # by name, version, why

    @property
    def ok(self) -> bool:
        return not self.lost

    def to_json(self) -> dict[str, Any]:
        return {"acknowledged": self.acknowledged, "verified": self.verified,
                "superseded": self.superseded,
                "unacknowledged_verified": self.unacknowledged_verified, "lost": self.lost}


async def verify_acknowledged(http: aiohttp.ClientSession, ops: Iterable[Op], *,
                              versions_kept: int, attempts: int = 3,
                              concurrency: int = 4) -> LossReport:
    """Read back every acknowledged write.

    For each name the newest acknowledged version must be listed, readable and
    byte-exact; an older acknowledged version still listed must match too. A
    version pruned because ``versions_kept`` newer versions exist is
    superseded, not lost (for the newest acknowledged one that takes later
    writes whose acknowledgement we did not get); any other missing version
    is lost.
    """
    acked: dict[str, list[Op]] = defaultdict(list)
    sent: dict[str, set[str]] = defaultdict(set)
    for op in ops:
        if op.kind == "write":
            sent[op.name].add(op.digest)
            if op.ok:
                acked[op.name].append(op)
    report = LossReport(acknowledged=sum(len(v) for v in acked.values()))
    limit = asyncio.Semaphore(concurrency)

    async def one(name: str, writes: list[Op]) -> None:
        async with limit:
            await _verify_name(http, name, writes, sent[name], versions_kept, attempts, report)

    await asyncio.gather(*(one(n, w) for n, w in sorted(acked.items())))
    report.lost.sort(key=lambda x: (x["name"], x["version"]))
    return report


async def _verify_name(http: aiohttp.ClientSession, name: str, writes: list[Op],
                       sent: set[str], versions_kept: int, attempts: int,
                       report: LossReport) -> None:
    file_id = writes[-1].file_id
    listed, current = await _versions(http, file_id, attempts)
    for version in sorted((listed or set()) - {w.version for w in writes}):
        digest, problem = await _digest(http, file_id, version, attempts)
        if digest in sent:
            report.unacknowledged_verified += 1
        else:
            report.lost.append({"name": name, "version": version, "file_id": file_id,
                                "digest": digest, "why": problem or "a version whose write "
                                "was not acknowledged holds bytes no write sent"})
    for w in sorted(writes, key=lambda w: w.version or 0):
        version = w.version or 0
        if listed is None:
            why = "file unknown to the master"
        elif version not in listed:
            # Pruning keeps the newest `versions_kept`: a version is gone
            # legitimately only if that many newer ones exist.
            if current - version >= versions_kept:
                report.superseded += 1
                continue
            why = f"version missing (current {current}, listed {sorted(listed)})"
        else:
            digest, problem = await _digest(http, file_id, version, attempts)
            if digest == w.digest:
                report.verified += 1
                continue
            why = problem or "bytes differ from the acknowledged write"
        report.lost.append({"name": name, "version": version, "file_id": file_id,
                            "digest": w.digest, "why": why})


async def _versions(http: aiohttp.ClientSession, file_id: str | None,
                    attempts: int) -> tuple[set[int] | None, int]:
    if file_id is None:
        return None, 0
    for attempt in range(attempts):
        try:
            async with http.get(f"/api/v1/files/{file_id}/versions") as resp:
                if resp.status == 404:
                    return None, 0
                if resp.status == 200:
                    body = await resp.json()
                    return {int(v["version"]) for v in body["versions"]}, int(
                        body["current_version"])
        except (aiohttp.ClientError, TimeoutError):
            pass
        await asyncio.sleep(0.5 * (attempt + 1))
    return None, 0


async def _digest(http: aiohttp.ClientSession, file_id: str | None, version: int,
                  attempts: int) -> tuple[str | None, str | None]:
    """The digest of one version's bytes, or why they could not be read
    (retried: the check asks whether the data exists, not whether one read
    succeeds)."""
    problem = None
    for attempt in range(attempts):
        try:
            async with http.get(f"/api/v1/files/{file_id}/download",
                                params={"version": str(version)}) as resp:
                if resp.status == 200:
                    return blake3.blake3(await resp.read()).hexdigest(), None
                problem = f"unreadable: {_error_code(await _json(resp), resp.status)}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            problem = f"unreadable: {type(exc).__name__}"
        await asyncio.sleep(0.5 * (attempt + 1))
    return None, problem
