"""A TCP fault proxy: one listening port forwarding to one upstream address,
with faults that can be changed while connections are open.

The chaos benchmark puts one in front of every worker's gRPC port (the master
reaches the worker through it) and one in front of the master's membership
port for every worker (its heartbeats go through it), so cutting both is a
real partition in both directions.

Faults (:class:`Faults`), all off by default:

- ``latency_ms`` ± ``jitter_ms``: every forwarded segment is delayed, in both
  directions, and order is kept per direction (a segment never overtakes the
  one before it — as on a real link, where jitter reorders nothing in TCP).
- ``stall_share`` / ``stall_ms``: that share of segments is held back
  ``stall_ms`` first (and what follows waits behind it): what a lost segment
  costs TCP, a retransmission timeout.
- ``reset_share``: that share of new connections is reset (RST) right after
  it is accepted; :meth:`FaultProxy.reset_connections` resets the open ones.
- ``bandwidth``: bytes per second per direction, shared by all connections
  (a token bucket), like a link of that capacity.
- ``blackhole``: nothing is forwarded and nothing new gets through: open
  connections hang, new ones are accepted but never answered — as seen from
  either side of a partition, calls time out rather than fail fast. Healing
  releases what was held (TCP would have retransmitted it).

Used in-process (:class:`FaultProxy`, :class:`ProxyGroup`) or as its own
process with a small HTTP control endpoint::

    python -m echofs.testing.faultproxy --control-port 7000 \\
        --proxy w1=19091:127.0.0.1:9091 --proxy w2=19092:127.0.0.1:9092

    GET  /faults                  every proxy: listen port, upstream, faults, connections
    POST /faults                  {"w1": {"blackhole": true}, ...}: set those proxies' faults
    POST /heal                    {"proxies": ["w1"]} or no body (all): clear faults
    POST /reset                   {"proxies": ["w1"]} or no body (all): reset open connections
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import random
import signal
import socket
import struct
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields
from typing import Any

import aiohttp
from aiohttp import web

log = logging.getLogger(__name__)

_READ_SIZE = 256 * 1024
# Segments held per direction before the proxy stops reading (backpressure):
# bounds memory when latency or a bandwidth cap slows delivery.
_QUEUE_SEGMENTS = 64
_MAX_LATENCY_MS = 60_000.0


class FaultError(ValueError):
    """A fault description that makes no sense (a 400 on the control endpoint)."""


@dataclass(frozen=True)
class Faults:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    stall_share: float = 0.0
    stall_ms: float = 0.0
    reset_share: float = 0.0
    bandwidth: float | None = None  # bytes per second per direction; None = unlimited
    blackhole: bool = False

    def __post_init__(self) -> None:
        for name in ("latency_ms", "jitter_ms", "stall_ms"):
            value = getattr(self, name)
            if not 0.0 <= value <= _MAX_LATENCY_MS:
                raise FaultError(f"{name} must be between 0 and {_MAX_LATENCY_MS:.0f}")
        if self.jitter_ms > self.latency_ms:
            raise FaultError("jitter_ms must not exceed latency_ms (no negative delays)")
        for name in ("stall_share", "reset_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise FaultError(f"{name} must be between 0 and 1")
        if self.bandwidth is not None and self.bandwidth < 1024:
            raise FaultError("bandwidth must be at least 1024 bytes per second (or null)")

    @classmethod
    def from_json(cls, body: Any) -> Faults:
        if not isinstance(body, dict):
            raise FaultError("faults must be a JSON object")
        known = {f.name: f for f in fields(cls)}
        unknown = set(body) - set(known)
        if unknown:
            raise FaultError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        values: dict[str, Any] = {}
        for name, value in body.items():
            if name == "blackhole":
                if not isinstance(value, bool):
                    raise FaultError("blackhole must be true or false")
            elif name == "bandwidth" and value is None:
                pass
            elif isinstance(value, bool) or not isinstance(value, int | float):
                raise FaultError(f"{name} must be a number")
            else:
                value = float(value)
            values[name] = value
        return cls(**values)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def active(self) -> bool:
        return self != Faults()


class _TokenBucket:
    """A byte budget refilled at ``rate`` per second; a send may overdraw it
    and then waits until the debt is repaid, so large segments are paced
    rather than refused."""

    def __init__(self) -> None:
        self.tokens = 0.0
        self.updated = time.monotonic()

    async def take(self, amount: int, rate: float | None) -> None:
        now = time.monotonic()
        if rate is None:
            self.tokens, self.updated = 0.0, now
            return
        burst = rate / 20  # at most 50 ms worth saved up
        self.tokens = min(burst, self.tokens + (now - self.updated) * rate)
        self.updated = now
        self.tokens -= amount
        if self.tokens < 0:
            await asyncio.sleep(-self.tokens / rate)


class FaultProxy:
    def __init__(self, upstream_host: str, upstream_port: int, *, listen_host: str = "127.0.0.1",
                 listen_port: int = 0, name: str | None = None,
                 faults: Faults | None = None, seed: int | None = None) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.listen_host = listen_host
        self.listen_port = listen_port
        self.name = name or f"proxy-{upstream_port}"
        self._faults = faults or Faults()
        self._random = random.Random(seed)
        self._open = asyncio.Event()  # set = not blackholed
        self._open.set()
        self._server: asyncio.Server | None = None
        self._connections: set[_Connection] = set()
        self._buckets = (_TokenBucket(), _TokenBucket())
        self.accepted = 0
        self.resets = 0
        self.bytes_forwarded = [0, 0]  # to upstream, to client

    # -- control -----------------------------------------------------------------

    @property
    def faults(self) -> Faults:
        return self._faults

    def set_faults(self, faults: Faults) -> None:
        self._faults = faults
        if faults.blackhole:
            self._open.clear()
        else:
            self._open.set()
        log.info("proxy %s faults: %s", self.name,
                 {k: v for k, v in faults.to_json().items() if v} or "none")

    def heal(self) -> None:
        self.set_faults(Faults())

    def reset_connections(self) -> int:
        """Reset (RST) every open connection; returns how many."""
        connections = list(self._connections)
        for connection in connections:
            connection.reset()
        self.resets += len(connections)
        return len(connections)

    @property
    def connections(self) -> int:
        return len(self._connections)

    def describe(self) -> dict[str, Any]:
        return {"listen": f"{self.listen_host}:{self.listen_port}",
                "upstream": f"{self.upstream[0]}:{self.upstream[1]}",
                "faults": self._faults.to_json(), "connections": self.connections,
                "accepted": self.accepted, "resets": self.resets,
                "bytes_to_upstream": self.bytes_forwarded[0],
                "bytes_to_client": self.bytes_forwarded[1]}

    # -- lifecycle ---------------------------------------------------------------

    async def start(self) -> FaultProxy:
        self._server = await asyncio.start_server(self._accept, self.listen_host,
                                                  self.listen_port, reuse_address=True)
        self.listen_port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for connection in list(self._connections):
            connection.reset()
        for connection in list(self._connections):
            await connection.finished()
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> FaultProxy:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- forwarding --------------------------------------------------------------

    def delay(self) -> float:
        """Seconds one segment is held: latency ± jitter, plus a stall if this
        segment is one of the unlucky share."""
        f = self._faults
        seconds = 0.0
        if f.latency_ms:
            seconds += max(0.0, f.latency_ms + self._random.uniform(-f.jitter_ms, f.jitter_ms))
        if f.stall_share and self._random.random() < f.stall_share:
            seconds += f.stall_ms
        return seconds / 1000.0

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        connection = _Connection(self, reader, writer)
        self._connections.add(connection)
        try:
            if self._faults.reset_share and self._random.random() < self._faults.reset_share:
                self.resets += 1
                connection.reset()
                return
            await connection.run()
        except asyncio.CancelledError:
            pass  # reset while held or pumping: the sockets are closed already
        finally:
            self._connections.discard(connection)

    async def wait_open(self) -> None:
        await self._open.wait()

    async def pace(self, direction: int, size: int) -> None:
        await self._buckets[direction].take(size, self._faults.bandwidth)
        self.bytes_forwarded[direction] += size


def _abort(writer: asyncio.StreamWriter | None) -> None:
    """Close with RST (SO_LINGER 0), not FIN: the peer sees a reset."""
    if writer is None:
        return
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class _Connection:
    """One client connection and its upstream twin: two pumps, each a reader
    feeding a queue of (deliver_at, bytes) and a sender draining it."""

    def __init__(self, proxy: FaultProxy, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        self.proxy = proxy
        self.client = (reader, writer)
        self.upstream_writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._main: asyncio.Task[Any] | None = None
        self._done = asyncio.Event()
        self._reset = False

    def reset(self) -> None:
        self._reset = True
        _abort(self.client[1])
        _abort(self.upstream_writer)
        for task in self._tasks:
            task.cancel()
        # A connection still held by a blackhole is waiting, not pumping.
        if self._main is not None and self._main is not asyncio.current_task():
            self._main.cancel()

    async def finished(self) -> None:
        await self._done.wait()

    async def run(self) -> None:
        self._main = asyncio.current_task()
        try:
            # A blackholed proxy accepts but does not connect: the client sees
            # a connection that never answers, as behind a partition.
            await self.proxy.wait_open()
            if self._reset:
                return
            try:
                up_reader, up_writer = await asyncio.open_connection(*self.proxy.upstream)
            except OSError:
                _abort(self.client[1])
                return
            self.upstream_writer = up_writer
            if self._reset:
                _abort(up_writer)
                return
            self._tasks = [
                asyncio.create_task(self._pump(self.client[0], up_writer, 0)),
                asyncio.create_task(self._pump(up_reader, self.client[1], 1)),
            ]
            done, pending = await asyncio.wait(self._tasks,
                                               return_when=asyncio.FIRST_EXCEPTION)
            broken = self._reset or any(t.cancelled() or t.exception() is not None
                                        for t in done)
            if broken:
                # One side failed or was reset: the other side must not
                # linger half-open, so both are reset and the pumps stopped.
                _abort(self.client[1])
                _abort(up_writer)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
            else:
                self.client[1].close()
                up_writer.close()
        finally:
            self._done.set()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    direction: int) -> None:
        queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue(_QUEUE_SEGMENTS)
        sender = asyncio.create_task(self._send(queue, writer, direction))
        last = 0.0
        try:
            while True:
                await self.proxy.wait_open()
                data = await reader.read(_READ_SIZE)
                # Never before the previous segment: order is kept per direction.
                last = max(time.monotonic() + self.proxy.delay(), last)
                await queue.put((last, data))
                if not data:
                    break
            await sender
        finally:
            if not sender.done():
                sender.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await sender

    async def _send(self, queue: asyncio.Queue[tuple[float, bytes]],
                    writer: asyncio.StreamWriter, direction: int) -> None:
        while True:
            deliver_at, data = await queue.get()
            wait = deliver_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            # Held, not dropped, while blackholed: released at heal.
            await self.proxy.wait_open()
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            await self.proxy.pace(direction, len(data))
            writer.write(data)
            await writer.drain()


class ProxyGroup:
    """Named proxies and the HTTP control endpoint over them."""

    def __init__(self) -> None:
        self.proxies: dict[str, FaultProxy] = {}
        self._runner: web.AppRunner | None = None
        self.control_port: int | None = None

    async def add(self, name: str, upstream_host: str, upstream_port: int, *,
                  listen_port: int = 0, listen_host: str = "127.0.0.1") -> FaultProxy:
        if name in self.proxies:
            raise ValueError(f"proxy {name!r} exists already")
        proxy = FaultProxy(upstream_host, upstream_port, listen_host=listen_host,
                           listen_port=listen_port, name=name)
        await proxy.start()
        self.proxies[name] = proxy
        return proxy

    def _named(self, names: Iterable[str] | None) -> list[FaultProxy]:
        if names is None:
            return list(self.proxies.values())
        chosen = []
        for name in names:
            if name not in self.proxies:
                raise KeyError(name)
            chosen.append(self.proxies[name])
        return chosen

    def set_faults(self, faults: dict[str, Faults]) -> None:
        chosen = dict(zip(faults, self._named(faults), strict=True))
        for name, proxy in chosen.items():
            proxy.set_faults(faults[name])

    def heal(self, names: Iterable[str] | None = None) -> None:
        for proxy in self._named(names):
            proxy.heal()

    def reset_connections(self, names: Iterable[str] | None = None) -> int:
        return sum(proxy.reset_connections() for proxy in self._named(names))

    def describe(self) -> dict[str, Any]:
        return {name: proxy.describe() for name, proxy in self.proxies.items()}

    # -- HTTP control ------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_json_errors])
        app.add_routes([
            web.get("/faults", self._get_faults),
            web.post("/faults", self._post_faults),
            web.post("/heal", self._post_heal),
            web.post("/reset", self._post_reset),
        ])
        return app

    async def serve_control(self, port: int = 0, host: str = "127.0.0.1") -> int:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[union-attr]
        self.control_port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.control_port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for proxy in self.proxies.values():
            await proxy.stop()

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"proxies": self.describe()})

    async def _post_faults(self, request: web.Request) -> web.Response:
        body = await _body(request, required=True)
        try:
            faults = {str(name): Faults.from_json(value) for name, value in body.items()}
        except FaultError as exc:
            raise _error(400, "invalid_faults", str(exc)) from None
        if not faults:
            raise _error(400, "invalid_faults", "name at least one proxy")
        self._check_names(faults)
        self.set_faults(faults)
        return web.json_response({"proxies": self.describe()})

    async def _post_heal(self, request: web.Request) -> web.Response:
        names = _names(await _body(request, required=False))
        self._check_names(names)
        self.heal(names)
        return web.json_response({"proxies": self.describe()})

    async def _post_reset(self, request: web.Request) -> web.Response:
        names = _names(await _body(request, required=False))
        self._check_names(names)
        return web.json_response({"reset": self.reset_connections(names)})

    def _check_names(self, names: Iterable[str] | None) -> None:
        unknown = sorted(set(names or ()) - set(self.proxies))
        if unknown:
            raise _error(404, "unknown_proxy", f"no proxy named {', '.join(unknown)}")


def _error(status: int, code: str, message: str) -> web.HTTPException:
    return _HTTP_ERRORS[status](text=json.dumps({"error": {"code": code, "message": message}}),
                                content_type="application/json")


_HTTP_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 404: web.HTTPNotFound, 405: web.HTTPMethodNotAllowed}


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json":
            raise
        raise _HTTP_ERRORS.get(exc.status, web.HTTPBadRequest)(
            text=json.dumps({"error": {"code": "http_error", "message": exc.reason}}),
            content_type="application/json") from None


async def _body(request: web.Request, *, required: bool) -> dict[str, Any]:
    if not request.can_read_body:
        if required:
            raise _error(400, "invalid_json", "request body must be a JSON object")
        return {}
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, ValueError):
        raise _error(400, "invalid_json", "request body must be a JSON object") from None
    if not isinstance(body, dict):
        raise _error(400, "invalid_json", "request body must be a JSON object")
    return body


def _names(body: dict[str, Any]) -> list[str] | None:
    if "proxies" not in body:
        return None
    names = body["proxies"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _error(400, "invalid_proxies", "'proxies' must be a list of proxy names")
    return names


# -- as its own process ----------------------------------------------------------------


def parse_proxy_spec(spec: str) -> tuple[str, int, str, int]:
    """``NAME=LISTEN_PORT:UPSTREAM_HOST:UPSTREAM_PORT``."""
    name, sep, rest = spec.partition("=")
    parts = rest.split(":")
    if not sep or not name or len(parts) != 3:
        raise ValueError(f"proxy spec must be NAME=LISTEN_PORT:HOST:PORT, got {spec!r}")
    try:
        return name, int(parts[0]), parts[1], int(parts[2])
    except ValueError:
        raise ValueError(f"ports must be integers in {spec!r}") from None


async def _serve(control_port: int, specs: list[tuple[str, int, str, int]]) -> None:
    group = ProxyGroup()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        for name, listen, host, port in specs:
            await group.add(name, host, port, listen_port=listen)
        port = await group.serve_control(control_port)
        log.info("fault proxies %s; control on 127.0.0.1:%d", ", ".join(group.proxies), port)
        await stop.wait()
    finally:
        await group.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m echofs.testing.faultproxy",
                                     description="TCP fault proxies with an HTTP control port")
    parser.add_argument("--control-port", type=int, required=True)
    parser.add_argument("--proxy", action="append", default=[], metavar="NAME=LISTEN:HOST:PORT")
    args = parser.parse_args(argv)
    try:
        specs = [parse_proxy_spec(s) for s in args.proxy]
    except ValueError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s faultproxy %(message)s")
    asyncio.run(_serve(args.control_port, specs))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


# -- the control endpoint's client ------------------------------------------------------


class FaultControl:
    """Drives a fault proxy process through its HTTP control endpoint."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    async def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http, \
                http.request(method, f"{self.url}{path}", json=body) as resp:
            payload = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"fault proxy control: {resp.status} {payload}")
            return payload

    async def set(self, faults: dict[str, Faults]) -> None:
        await self._call("POST", "/faults", {n: f.to_json() for n, f in faults.items()})

    async def heal(self, names: Iterable[str] | None = None) -> None:
        await self._call("POST", "/heal", None if names is None else {"proxies": list(names)})

    async def reset(self, names: Iterable[str] | None = None) -> int:
        body = None if names is None else {"proxies": list(names)}
        return int((await self._call("POST", "/reset", body))["reset"])

    async def describe(self) -> dict[str, Any]:
        return (await self._call("GET", "/faults"))["proxies"]
