"""aiohttp's HTTP/1.1 connection handler, made safe to face the Internet.

aiohttp waits as long as a client likes for request headers and for body
bytes, holds as many connections as the process has descriptors, and answers
what its parser rejects in plain text that echoes the request, with an ERROR
traceback in the log. :class:`GuardedRequestHandler` adds, per connection:

- a header timeout: a request's line and headers must all arrive within
  ``header_timeout`` of its first byte (or of connecting); else the
  connection is closed (after a 408 if the client had started a request);
- a body-idle timeout: an unfinished body that gets no byte for
  ``body_idle_timeout`` while the server is reading makes the handler's next
  read fail with :class:`~echofs.core.errors.RequestTimeout`, so the upload
  is abandoned the way any failed upload is and the client gets a 408 JSON;
  time the server itself is not reading (flow control) never counts;
- the connection cap of :class:`~echofs.serving.connection_limit.ConnectionLimit`;
- parser errors as the documented JSON error (400, 414 for an overlong
  request line, 431 for overlong or too many headers) with one WARNING
  request line and no traceback.

It hooks aiohttp 3.14's ``RequestHandler`` where aiohttp itself hooks its
phases (``connection_made``, ``data_received``, ``handle_error``) and reads a
few of its attributes; tests/unit/serving/test_http_protocol.py pins them.
:class:`GuardedAppRunner` is the ``web.AppRunner`` that builds these handlers.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from typing import Any, cast

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError, LineTooLong
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from echofs.config import Settings
from echofs.core.errors import RequestTimeout
from echofs.observability.request_id import HTTP_HEADER as REQUEST_ID_HEADER
from echofs.observability.request_id import accept_request_id
from echofs.observability.request_log import REQUEST_LOG
from echofs.serving.connection_limit import ConnectionLimit, automatic_limit, raw_json_response
from echofs.serving.flood_log import ThrottledWarning
from echofs.serving.middleware import error_response

log = logging.getLogger("echofs.http")

# How long a refused connection stays open after its 503, so the request
# bytes the client already sent are read rather than answered with a reset
# that could destroy the 503 before the client reads it.
_REFUSAL_LINGER = 1.0
# aiohttp's limits on the request line, one header line and the header count.
MAX_LINE_BYTES = 8190
MAX_HEADERS = 128


@dataclass(frozen=True, slots=True)
class HttpLimits:
    """What one HTTP server allows its clients (see the HTTP_* settings)."""

    header_timeout: float
    body_idle_timeout: float
    keepalive_timeout: float
    max_connections: int

    @classmethod
    def from_settings(cls, settings: Settings) -> HttpLimits:
        return cls(header_timeout=settings.http_header_timeout,
                   body_idle_timeout=settings.http_body_idle_timeout,
                   keepalive_timeout=settings.http_keepalive_timeout,
                   max_connections=settings.http_max_connections or automatic_limit())


def parser_error_answer(exc: HttpProcessingError, *,
                        request_line_ended: bool) -> tuple[int, str, str]:
    """Status, code and message for what aiohttp's parser rejected; the
    message never quotes the request (the parser's own text does)."""
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else MAX_LINE_BYTES
        if not request_line_ended:
            return 414, "uri_too_long", (
                f"the request line (method, URL, version) is longer than {limit} bytes")
        return 431, "headers_too_large", f"a request header line is longer than {limit} bytes"
    reason = _reason(exc)
    if reason.lower().startswith("too many headers"):
        return 431, "headers_too_large", f"a request may carry at most {MAX_HEADERS} headers"
    return 400, "bad_request", f"malformed HTTP request: {reason}"


def _reason(exc: HttpProcessingError) -> str:
    """The parser's reason without the request bytes it quotes: its first
    line, cut where a quoted value starts."""
    first = (exc.message or "").strip().split("\n", 1)[0]
    reason = re.split(r"""[:\s]*(?:b|bytearray\()?['"]""", first, maxsplit=1)[0]
    reason = reason.strip().rstrip(":").strip()[:120]
    return reason or "unreadable request"


class GuardedRequestHandler(RequestHandler):
    """One client connection: aiohttp's handler with the timeouts, the cap
    and the JSON parser errors described in the module docstring."""

    def __init__(self, manager: web.Server, *, limits: HttpLimits,
                 connections: ConnectionLimit, timeouts: ThrottledWarning,
                 **kwargs: Any) -> None:
        super().__init__(manager, keepalive_timeout=limits.keepalive_timeout, **kwargs)
        self._limits = limits
        self._connections = connections
        self._timeouts = timeouts
        self._admitted = False
        self._refusal_close: asyncio.TimerHandle | None = None
        # Header phase: when this request's clock started, whether any of its
        # bytes came, whether its request line is complete.
        self._header_timer: asyncio.TimerHandle | None = None
        self._request_started = 0.0
        self._request_bytes = False
        self._request_line_ended = False
        self._request_read = 0
        # What the last parsed message's header phase looked like (for the
        # answer to a parser error, which the handler task writes later).
        self._parsed_started = 0.0
        self._parsed_line_ended = False
        # Body phase: the body still arriving and when its last bytes came.
        self._body: StreamReader | None = None
        self._body_seen = 0.0
        self._body_timer: asyncio.TimerHandle | None = None

    # -- connection ---------------------------------------------------------------

    @property
    def open_connections(self) -> int:
        """Connections this server holds open now, this one included."""
        return self._connections.open

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._connections.try_open():
            self._refuse(cast(asyncio.Transport, transport))
            return
        self._admitted = True
        super().connection_made(transport)
        self._start_header_clock(with_bytes=False)

    def _refuse(self, transport: asyncio.Transport) -> None:
        # Never handed to aiohttp's machinery: the server does not know this
        # connection; it only drains what the client sends until it closes.
        transport.write(self._connections.refusal)
        if transport.can_write_eof():
            transport.write_eof()
        self._refusal_close = self._loop.call_later(_REFUSAL_LINGER, transport.close)

    def connection_lost(self, exc: BaseException | None) -> None:
        if not self._admitted:
            if self._refusal_close is not None:
                self._refusal_close.cancel()
            return
        self._admitted = False
        self._connections.close()
        self._stop_header_clock()
        self._end_body()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if not self._admitted:
            return  # a refused connection: drained, not parsed
        now = self._loop.time()
        if self._body is not None:
            self._body_seen = now
        elif self._payload_parser is None and not self._upgraded and data:
            if self._header_timer is None:
                self._start_header_clock(with_bytes=True)
            self._request_bytes = True
            if not self._request_line_ended:
                # A request line that ended within the line limit cannot be
                # what overflows later: that is a header (431, not 414).
                newline = data.find(b"\n")
                self._request_line_ended = (
                    newline >= 0 and self._request_read + newline <= MAX_LINE_BYTES + 1)
                self._request_read += len(data)
        queued = len(self._messages)
        super().data_received(data)
        if len(self._messages) > queued:
            self._headers_arrived(self._messages[-1][1])
        if self._body is not None and self._body.is_eof():
            self._end_body()

    # -- header timeout -------------------------------------------------------------

    def _start_header_clock(self, *, with_bytes: bool) -> None:
        self._request_started = self._loop.time()
        self._request_bytes = with_bytes
        self._request_line_ended = False
        self._request_read = 0
        self._header_timer = self._loop.call_at(
            self._request_started + self._limits.header_timeout, self._header_timeout)

    def _stop_header_clock(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _headers_arrived(self, payload: StreamReader) -> None:
        self._parsed_started = self._request_started
        self._parsed_line_ended = self._request_line_ended
        self._stop_header_clock()
        self._request_bytes = self._request_line_ended = False
        self._request_read = 0
        if not payload.is_eof():
            self._end_body()
            self._body = payload
            self._body_seen = self._loop.time()
            self._body_timer = self._loop.call_at(
                self._body_seen + self._limits.body_idle_timeout, self._check_body)

    def _header_timeout(self) -> None:
        self._header_timer = None
        transport = self.transport
        if transport is None or self._force_close:
            return
        if self._request_in_progress or self._messages:
            # A request before this one is still being answered: its answer
            # is not cut short; this one's clock starts over.
            self._start_header_clock(with_bytes=self._request_bytes)
            return
        self._timeouts.warn("closed a connection whose request headers did not arrive "
                            "within %g s (HTTP_HEADER_TIMEOUT)", self._limits.header_timeout)
        if self._request_bytes:
            transport.write(raw_json_response(
                408, "request_timeout", "the request line and headers did not arrive within "
                f"{self._limits.header_timeout:g} s"))
        self.force_close()

    # -- body-idle timeout ----------------------------------------------------------

    def _end_body(self) -> None:
        self._body = None
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def _check_body(self) -> None:
        self._body_timer = None
        body = self._body
        if body is None or body.is_eof() or self.transport is None:
            return
        now = self._loop.time()
        if self._reading_paused or self._buffer_paused:
            self._body_seen = now  # the server is not reading: the client cannot send
        deadline = self._body_seen + self._limits.body_idle_timeout
        request = self._current_request
        if now < deadline or request is None or request.content is not body:
            # Not idle long enough, or no handler reads this body yet (a
            # pipelined request waits its turn; aiohttp's own lingering read
            # after an answer has its own limit).
            self._body_timer = self._loop.call_at(
                max(deadline, now + self._limits.body_idle_timeout / 4), self._check_body)
            return
        self._body = None
        # The rest is not coming: after the 408, close without waiting for it.
        self._lingering_time = 0.0
        body.set_exception(RequestTimeout(
            f"no request body bytes arrived for {self._limits.body_idle_timeout:g} s; "
            "the request was abandoned"))

    # -- parser errors --------------------------------------------------------------

    def handle_error(self, request: BaseRequest, status: int = 500,
                     exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:
            # Part of an answer is out: nothing sensible can follow it.
            raise ConnectionError("an answer was already being sent")
        request_id = accept_request_id(None)
        if isinstance(exc, HttpProcessingError):
            status, code, text = parser_error_answer(
                exc, request_line_ended=self._parsed_line_ended)
            self._log_rejected(request_id, status, code, text)
        else:
            # Something escaped the error middleware: a bug, worth its traceback.
            log.error("unhandled error outside the request middleware", exc_info=exc)
            code, text = "internal", f"internal server error; see the server log ({request_id})"
        response = error_response(status, code, text, {REQUEST_ID_HEADER: request_id})
        response.force_close()
        return response

    def _log_rejected(self, request_id: str, status: int, code: str, text: str) -> None:
        # The same event the request middleware writes, for a request that
        # never got as far as a method and a path.
        if REQUEST_LOG.enabled(logging.WARNING):
            peer = self.peername
            REQUEST_LOG.emit(logging.WARNING, "echofs.http", "request", {
                "method": "-", "path": "-", "status": status,
                "duration_ms": round((self._loop.time() - self._parsed_started) * 1000, 2),
                "request_id": request_id, "error": code, "reason": text,
                "remote": peer[0] if isinstance(peer, tuple) else peer})


class GuardedServer(web.Server):
    """aiohttp's low-level server, building :class:`GuardedRequestHandler`\\ s
    that share one connection limit."""

    def __init__(self, handler: Any, *, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(handler, **kwargs)
        self.limits = limits
        self.connection_limit = ConnectionLimit(limits.max_connections)
        self._timeouts = ThrottledWarning(log)

    def __call__(self) -> GuardedRequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, limits=self.limits,
                                     connections=self.connection_limit,
                                     timeouts=self._timeouts, **self._kwargs)


class GuardedAppRunner(web.AppRunner):
    """``web.AppRunner`` whose server is a :class:`GuardedServer`."""

    def __init__(self, app: web.Application, *, limits: HttpLimits, **kwargs: Any) -> None:
        super().__init__(app, **kwargs)
        self.limits = limits

    async def _make_server(self) -> web.Server:
        # The app's start-up and freezing happen in aiohttp's own method; only
        # the server it builds is swapped for one with the same handler.
        plain = await super()._make_server()
        return GuardedServer(plain.request_handler, request_factory=plain.request_factory,
                             handler_cancellation=plain.handler_cancellation,
                             limits=self.limits, **self._kwargs)
