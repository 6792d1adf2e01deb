"""One fault proxy: a listening port forwarding to one upstream address, with
faults (:class:`~echofs.testing.faults.Faults`) that can be changed while
connections are open.

Each connection is two pumps, one per direction, each a reader feeding a
queue of (deliver_at, bytes) and a sender draining it: a delay never reorders
a direction, a blackhole holds rather than drops, and a bandwidth cap paces
both directions through a shared token bucket.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import socket
import struct
import time
from typing import Any

from echofs.testing.faults import Faults

log = logging.getLogger(__name__)

_READ_SIZE = 256 * 1024
# Segments held per direction before the proxy stops reading (backpressure):
# bounds memory when latency or a bandwidth cap slows delivery.
_QUEUE_SEGMENTS = 64


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
