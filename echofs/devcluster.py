"""``echofs dev cluster``: a controller, a master and N workers as separate
processes on loopback, for local work on the real cluster path.

Each member is an ordinary ``echofs serve`` child; their logs are interleaved
on this terminal (each line already names its role and worker id). Members
start in dependency order, each once the one it talks to answers: the
controller, then the master (linked to it, so the consistency API works
through the master), then the workers — so no worker logs a "master
unreachable" that was only the master still starting. Ctrl-C or SIGTERM
stops them all with SIGTERM, so each shuts down cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import aiohttp

# A member that does not answer within this long is reported, and the
# cluster stops instead of waiting forever.
_START_TIMEOUT = 60.0
_POLL = 0.2
# The request id of this tool's own start-up health checks: their request log
# lines (a 503 each while the workers register) are dropped from the
# interleaved output, where they would read as trouble.
_CHECK_ID = "dev-cluster-start-check"


@dataclass(frozen=True, slots=True)
class ClusterLayout:
    data_dir: Path
    workers: int = 3
    port: int = 8080
    grpc_port: int = 9080
    replication_factor: int = 3
    controller: bool = True
    # Defaults derived from --port/--grpc-port (see cli.py): port + 2 and
    # grpc_port + 100, clear of the workers' grpc_port + i and port + 10 + i.
    controller_port: int | None = None
    controller_grpc_port: int | None = None

    @property
    def controller_http(self) -> int:
        return self.controller_port if self.controller_port is not None else self.port + 2

    @property
    def controller_grpc(self) -> int:
        return (self.controller_grpc_port if self.controller_grpc_port is not None
                else self.grpc_port + 100)

    def ports(self) -> list[int]:
        ports = [self.port, self.grpc_port]
        for index in range(1, self.workers + 1):
            ports += [self.grpc_port + index, self.port + 10 + index]
        if self.controller:
            ports += [self.controller_http, self.controller_grpc]
        return ports

    def check(self) -> None:
        if not 1 <= self.replication_factor <= self.workers:
            raise ValueError(f"replication factor {self.replication_factor} needs "
                             f"1..{self.workers} workers")
        ports = self.ports()
        clashes = sorted({p for p in ports if ports.count(p) > 1})
        if clashes:
            raise ValueError(f"ports {', '.join(map(str, clashes))} would be used twice: "
                             "choose other --port/--grpc-port/--controller-*-port values")
        if max(ports) > 65535:
            raise ValueError(f"port {max(ports)} is out of range: choose a lower --port or "
                             "--grpc-port")

    def check_ports_free(self) -> None:
        """Refuse ports another process listens on (an `echofs serve` left
        running, say): the member would fail to bind, and the health checks
        would meanwhile be answered by that other process."""
        busy = [port for port in self.ports() if not port_free(port)]
        if busy:
            raise ValueError(f"port(s) {', '.join(map(str, busy))} already in use on "
                             "127.0.0.1 (another echofs running?): stop it or choose other "
                             "--port/--grpc-port values")


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the members bind: a port in TIME_WAIT is free, a listener is not.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


@dataclass(frozen=True, slots=True)
class Member:
    name: str
    command: list[str]
    # The URL that answers once the member is up; None: nothing waits on it.
    health_url: str | None


def members(layout: ClusterLayout) -> list[Member]:
    """The children in start order."""
    base = [sys.executable, "-m", "echofs", "serve"]
    data_dir = layout.data_dir
    result: list[Member] = []
    link: list[str] = []
    if layout.controller:
        result.append(Member("controller", [
            *base, "--role=controller", "--controller-port", str(layout.controller_http),
            "--controller-grpc-port", str(layout.controller_grpc),
            "--data-dir", str(data_dir / "controller"),
        ], f"http://127.0.0.1:{layout.controller_http}/health"))
        link = ["--controller", f"127.0.0.1:{layout.controller_grpc}",
                "--controller-port", str(layout.controller_http)]
    result.append(Member("master", [
        *base, "--role=master", "--port", str(layout.port),
        "--grpc-port", str(layout.grpc_port), "--data-dir", str(data_dir / "master"),
        "--replication-factor", str(layout.replication_factor), *link,
    ], f"http://127.0.0.1:{layout.port}/api/v1/health"))
    for index in range(1, layout.workers + 1):
        worker_id = f"w{index}"
        result.append(Member(worker_id, [
            *base, "--role=worker", "--id", worker_id,
            "--store", f"local:{data_dir / 'workers' / worker_id}",
            "--grpc-port", str(layout.grpc_port + index),
            "--http-port", str(layout.port + 10 + index),
            "--master", f"127.0.0.1:{layout.grpc_port}", "--data-dir", str(data_dir),
        ], None))
    return result


def member_commands(*, data_dir: Path, workers: int, port: int, grpc_port: int,
                    replication_factor: int,
                    controller: bool = True) -> list[tuple[str, list[str]]]:
    """(name, command) of each member, in start order."""
    layout = ClusterLayout(data_dir, workers, port, grpc_port, replication_factor, controller)
    return [(m.name, m.command) for m in members(layout)]


async def _pump(stream: asyncio.StreamReader) -> None:
    """Copy a member's output here, line by line."""
    while line := await stream.readline():
        if _CHECK_ID.encode() in line:
            continue
        sys.stderr.write(line.decode(errors="replace"))
        sys.stderr.flush()


class _Stopped(Exception):
    """A member exited, or Ctrl-C, while the cluster was starting."""


async def _answers(http: aiohttp.ClientSession, url: str, *, ready: bool) -> bool:
    """The URL answers at all (``ready`` False: a master without workers
    answers 503 but is up), or reports "ok" with everything connected."""
    try:
        async with http.get(url) as resp:
            if not ready:
                return True
            if resp.status != 200:
                return False
            body = await resp.json()
            # "degraded" is a 200 too, while the last workers register.
            return body.get("status") == "ok" and body.get("consistency", {}).get(
                "controller_connected", True) is not False
    except (aiohttp.ClientError, TimeoutError, ValueError):
        return False


async def _wait_for(http: aiohttp.ClientSession, url: str, what: str, *, ready: bool,
                    procs: Sequence[asyncio.subprocess.Process], stop: asyncio.Event,
                    ) -> None:
    deadline = time.monotonic() + _START_TIMEOUT
    while not await _answers(http, url, ready=ready):
        if stop.is_set() or any(p.returncode is not None for p in procs):
            raise _Stopped()
        if time.monotonic() > deadline:
            raise _Stopped(f"{what} did not answer at {url} within {_START_TIMEOUT:.0f}s")
        await asyncio.sleep(_POLL)


def _banner(layout: ClusterLayout) -> str:
    lines = [f"echofs dev cluster ready: {layout.workers} workers, "
             f"RF={layout.replication_factor}, data in {layout.data_dir}",
             f"  API, web UI  http://127.0.0.1:{layout.port}  (metrics /metrics)",
             f"  master gRPC  127.0.0.1:{layout.grpc_port}  (workers register here)"]
    if layout.controller:
        lines.append(f"  controller   http://127.0.0.1:{layout.controller_http}, gRPC "
                     f"127.0.0.1:{layout.controller_grpc}  (also under /api/v1/consistency)")
    else:
        lines.append("  controller   none (--no-controller): files use the default mode")
    lines.append("  all workers store on this machine's disk; Ctrl-C stops the cluster")
    return "\n".join(lines)


async def run_cluster(*, data_dir: Path, workers: int, port: int, grpc_port: int,
                      replication_factor: int, controller: bool = True,
                      controller_port: int | None = None,
                      controller_grpc_port: int | None = None) -> int:
    layout = ClusterLayout(data_dir, workers, port, grpc_port, replication_factor, controller,
                           controller_port, controller_grpc_port)
    layout.check()
    layout.check_ports_free()
    procs: list[asyncio.subprocess.Process] = []
    pumps: list[asyncio.Task[None]] = []
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, stop.set)
    code = 0
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2),
                                         headers={"X-Request-Id": _CHECK_ID}) as http:
            for member in members(layout):
                proc = await asyncio.create_subprocess_exec(
                    *member.command, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT)
                procs.append(proc)
                assert proc.stdout is not None
                pumps.append(asyncio.create_task(_pump(proc.stdout)))
                if member.health_url is not None:
                    await _wait_for(http, member.health_url, member.name, ready=False,
                                    procs=procs, stop=stop)
            # Ready means healthy: every worker registered, the controller linked.
            await _wait_for(http, f"http://127.0.0.1:{port}/api/v1/health", "the cluster",
                            ready=True, procs=procs, stop=stop)
        print(_banner(layout), file=sys.stderr, flush=True)
        await _until_stopped(procs, stop)
    except _Stopped as exc:
        if exc.args:
            print(f"echofs dev cluster: {exc.args[0]}; stopping", file=sys.stderr, flush=True)
            code = 1
    return await _stop_all(procs, pumps) or code


async def _until_stopped(procs: Sequence[asyncio.subprocess.Process],
                         stop: asyncio.Event) -> None:
    exited = asyncio.ensure_future(asyncio.wait(
        [asyncio.ensure_future(p.wait()) for p in procs], return_when=asyncio.FIRST_COMPLETED))
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([exited, stopped], return_when=asyncio.FIRST_COMPLETED)
    for task in (exited, stopped):
        task.cancel()


async def _stop_all(procs: Sequence[asyncio.subprocess.Process],
                    pumps: Sequence[asyncio.Task[None]]) -> int:
    """SIGTERM every member still running (workers first: the reverse of the
    start order); the exit code of the first member that failed, else 0."""
    code = 0
    for proc in reversed(procs):
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        elif proc.returncode != 0 and not code:
            code = proc.returncode
    for proc in procs:
        try:
            await asyncio.wait_for(proc.wait(), 30)
        except TimeoutError:
            proc.kill()
    for pump in pumps:
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(pump, 5)
    return code
