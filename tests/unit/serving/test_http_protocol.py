"""The hardened HTTP connection handler in one process: the answers to parser
errors, the body-idle timeout and flow control, the connection cap's
bookkeeping, the once-per-window warnings, and the aiohttp internals the
handler relies on (so an aiohttp upgrade that moves them fails here, by
name, rather than silently dropping a timeout). Across a real process:
tests/integration/test_hostile_connections.py."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
import resource
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import aiohttp
import pytest
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadStatusLine, InvalidHeader, LineTooLong
from aiohttp.web_protocol import RequestHandler

from echofs.core.errors import RequestTimeout
from echofs.serving.connection_limit import ConnectionLimit, automatic_limit
from echofs.serving.endpoints import Served, role_app, serving
from echofs.serving.flood_log import (
    AcceptExhaustionLog,
    ThrottledWarning,
    accept_exhaustion_logged,
)
from echofs.serving.http_protocol import (
    GuardedAppRunner,
    GuardedRequestHandler,
    HttpLimits,
    parser_error_answer,
)

LIMITS = HttpLimits(header_timeout=0.5, body_idle_timeout=0.3, keepalive_timeout=5.0,
                    max_connections=50)

# -- parser errors ------------------------------------------------------------------


def test_an_overlong_request_line_is_414_and_an_overlong_header_431():
    exc = LineTooLong(b"/aaaa...", 8190)
    assert parser_error_answer(exc, request_line_ended=False)[:2] == (414, "uri_too_long")
    assert parser_error_answer(exc, request_line_ended=True)[:2] == (431, "headers_too_large")
    too_many = BadHttpMessage("Too many headers received")
    assert parser_error_answer(too_many, request_line_ended=True)[:2] == (431,
                                                                           "headers_too_large")


@pytest.mark.parametrize(("exc", "reason"), [
    (BadHttpMessage("Duplicate Content-Length:\n\n  b'Content-Length: 4'\n    ^"),
     "Duplicate Content-Length"),
    (InvalidHeader(b"X-Evil\x00: <script>"), "Invalid HTTP header"),
    (BadStatusLine("GE\x00T /secret HTTP/1.1"), "Bad status line"),
    (BadHttpMessage(""), "unreadable request"),
])
def test_parser_messages_never_quote_the_request(exc, reason):
    status, code, message = parser_error_answer(exc, request_line_ended=True)
    assert (status, code) == (400, "bad_request")
    assert message == f"malformed HTTP request: {reason}"


# -- the once-per-window warning and accept() exhaustion --------------------------------


def test_a_throttled_warning_is_one_line_per_window_with_a_count(caplog):
    now = [0.0]
    warning = ThrottledWarning(logging.getLogger("echofs.test"), window=10.0,
                               clock=lambda: now[0])
    caplog.set_level(logging.WARNING, logger="echofs.test")
    assert [warning.warn("flood %d", 1) for _ in range(1000)].count(True) == 1
    now[0] = 10.5
    warning.warn("flood %d", 2)
    assert [r.getMessage() for r in caplog.records] == [
        "flood 1", "flood 2 (999 more since the last such line)"]


def _accept_failure(code: int) -> dict[str, object]:
    # What asyncio's selector loop reports when accept() fails for resources.
    return {"message": "socket.accept() out of system resource",
            "exception": OSError(code, "Too many open files")}


async def test_accept_exhaustion_is_one_warning_without_traceback(caplog):
    caplog.set_level(logging.WARNING, logger="echofs.http")
    loop = asyncio.get_running_loop()
    seen: list[dict[str, object]] = []
    loop.set_exception_handler(lambda _loop, context: seen.append(context))
    try:
        # A second server of the process enters it too: installed once.
        with accept_exhaustion_logged(loop), accept_exhaustion_logged(loop):
            assert isinstance(loop.get_exception_handler(), AcceptExhaustionLog)
            for _ in range(500):
                loop.call_exception_handler(_accept_failure(errno.EMFILE))
            other = {"message": "something else", "exception": ValueError("x")}
            loop.call_exception_handler(other)
        assert seen == [other]  # the rest still reaches the handler there was before
        previous = loop.get_exception_handler()
        assert previous is not None and not isinstance(previous, AcceptExhaustionLog)
    finally:
        loop.set_exception_handler(None)
    lines = [r for r in caplog.records if "cannot accept new connections" in r.getMessage()]
    assert len(lines) == 1 and lines[0].exc_info is None


# -- the connection cap -------------------------------------------------------------------


def test_the_connection_limit_counts_and_refuses_with_a_json_503():
    limit = ConnectionLimit(2)
    assert limit.try_open() and limit.try_open()
    assert not limit.try_open() and limit.refused == 1
    limit.close()
    assert limit.try_open()
    head, _, body = limit.refusal.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
    assert b"\r\nRetry-After: 1" in head and b"\r\nConnection: close" in head
    assert f"Content-Length: {len(body)}".encode() in head
    assert json.loads(body)["error"]["code"] == "too_many_connections"


def test_the_automatic_limit_is_half_the_open_file_limit():
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    assert automatic_limit() == max(16, soft // 2)


# -- timeouts and flow control, in process ---------------------------------------------


@asynccontextmanager
async def served(app: web.Application, limits: HttpLimits = LIMITS) -> AsyncIterator[Served]:
    async with serving(app, host="127.0.0.1", http_port=0, limits=limits) as up:
        yield up


async def test_a_body_stalled_while_the_handler_reads_fails_with_request_timeout():
    raised: list[BaseException] = []

    async def read_all(request: web.Request) -> web.Response:
        try:
            await request.read()
        except RequestTimeout as exc:
            raised.append(exc)
            raise
        return web.json_response({})

    async with served(role_app([web.put("/up", read_all)])) as up:
        reader, writer = await asyncio.open_connection("127.0.0.1", up.port)
        writer.write(b"PUT /up HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n" + b"a" * 40)
        answer = await asyncio.wait_for(reader.read(), 5)
        writer.close()
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["code"] == "request_timeout"
    assert len(raised) == 1


async def test_time_the_server_is_not_reading_never_counts_as_client_idleness():
    """A handler busy for several idle timeouts before it reads a body bigger
    than aiohttp's buffers: the client is held back by flow control, not
    idle, and the upload completes."""
    size = 8 * 1024 * 1024
    got: list[int] = []

    async def slow_reader(request: web.Request) -> web.Response:
        await asyncio.sleep(LIMITS.body_idle_timeout * 4)
        got.append(sum([len(piece) async for piece in request.content.iter_any()]))
        return web.json_response({"n": got[-1]})

    async with served(role_app([web.put("/up", slow_reader)])) as up, \
            aiohttp.ClientSession() as http, \
            http.put(f"http://127.0.0.1:{up.port}/up", data=b"b" * size) as resp:
        assert resp.status == 200, await resp.text()
    assert got == [size]


async def test_the_runner_builds_guarded_handlers_with_the_keepalive_timeout():
    async with served(role_app([])) as up:
        assert isinstance(up.runner, GuardedAppRunner)
        _reader, writer = await asyncio.open_connection("127.0.0.1", up.port)
        await asyncio.sleep(0.05)
        assert up.runner.server is not None
        handlers = up.runner.server.connections
        writer.close()
    assert len(handlers) == 1 and isinstance(handlers[0], GuardedRequestHandler)
    assert handlers[0].keepalive_timeout == LIMITS.keepalive_timeout


# -- what the handler relies on in aiohttp ---------------------------------------------


def test_the_aiohttp_internals_the_handler_uses_are_there():
    """GuardedRequestHandler reads these of aiohttp's RequestHandler (3.14);
    if one moves, the timeouts would silently stop working."""
    server = web.Server(lambda request: None, loop=asyncio.new_event_loop())  # type: ignore
    try:
        handler = RequestHandler(server, loop=server._loop)
        for name in ("_messages", "_payload_parser", "_upgraded", "_reading_paused",
                     "_buffer_paused", "_current_request", "_lingering_time",
                     "_request_in_progress", "_force_close", "_loop"):
            assert hasattr(handler, name), name
        assert hasattr(server, "_kwargs")
        for hook in ("connection_made", "connection_lost", "data_received", "handle_error"):
            assert hook in vars(RequestHandler), hook
    finally:
        server._loop.close()
