"""Where errors become HTTP responses — the only place.

Every error leaves as ``{"error": {"code", "message"}}`` with its status
(and the original EchoFS's ``success: false`` and ``message`` beside it):
our own :class:`~echofs.core.errors.EchoFSError` types, aiohttp's HTTP
exceptions (unknown route, wrong method, ...), and — logged with its traceback
on the server, never sent to the client — anything unexpected, as a 500.
"""

from __future__ import annotations

import errno
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, fields

import structlog
from aiohttp import web

from echofs.core.errors import EchoFSError, RangeNotSatisfiable, TooManyRequests
from echofs.observability.request_id import HTTP_HEADER as REQUEST_ID_HEADER
from echofs.observability.request_id import accept_request_id
from echofs.observability.request_log import REQUEST_LOG

log = structlog.get_logger("echofs.http")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class RequestFacts:
    """What a handler learned about its request, for the one log event per request."""

    request_id: str
    file_id: str | None = None
    user: str | None = None
    mode: str | None = None
    bytes: int | None = None
    error: str | None = None  # why a request ended without an answer

    def fields(self) -> dict[str, object]:
        return {k: v for k, v in ((f, getattr(self, f)) for f in _FACT_FIELDS) if v is not None}


_FACT_FIELDS = tuple(f.name for f in fields(RequestFacts))
FACTS = web.RequestKey("echofs_facts", RequestFacts)


def facts(request: web.Request) -> RequestFacts:
    return request[FACTS]

_HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 411: "length_required",
    413: "payload_too_large", 414: "uri_too_long", 415: "unsupported_media_type",
    416: "range_not_satisfiable", 422: "unprocessable", 429: "rate_limited",
    431: "headers_too_large", 503: "unavailable",
    507: "insufficient_storage",
}


# A request whose client went away before its answer: no HTTP status says
# so; nginx's convention (also the metrics' label) does.
CLIENT_CLOSED = 499


def _client_connected(request: web.Request) -> bool:
    transport = request.transport
    return transport is not None and not transport.is_closing()


def _unexpected(request: web.Request, request_id: str) -> web.Response:
    log.exception("unhandled error", path=request.path, method=request.method)
    return error_response(500, "internal", "internal server error; see the server log "
                          f"for request {request_id}")


def _out_of_space(exc: BaseException) -> bool:
    """A disk full under us after all: the reserves keep EchoFS's own writes
    off the last bytes, but something else may fill the disk. Then a write
    fails deep down (ENOSPC; SQLite's "database or disk is full", wrapped by
    SQLAlchemy) and the client is owed a 507, not a 500."""
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno == errno.ENOSPC:
            return True
        if "database or disk is full" in str(cause):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def error_response(status: int, code: str, message: str,
                   headers: dict[str, str] | None = None) -> web.Response:
    # ``success`` and ``message`` beside ``error``: the original EchoFS's
    # envelope, which its clients read, alongside our own shape.
    return web.json_response({"error": {"code": code, "message": message},
                              "success": False, "message": message},
                             status=status, headers=headers)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    request_id = accept_request_id(request.headers.get(REQUEST_ID_HEADER))
    request[FACTS] = RequestFacts(request_id)
    structlog.contextvars.bind_contextvars(request_id=request_id)
    started = time.monotonic()
    status = 500
    try:
        response = await handler(request)
        status = response.status
    except EchoFSError as exc:
        headers = {}
        if isinstance(exc, RangeNotSatisfiable):
            headers["Content-Range"] = f"bytes */{exc.size}"
        if isinstance(exc, TooManyRequests):
            headers["Retry-After"] = str(exc.retry_after)
        response = error_response(exc.status, exc.code, exc.message, headers)
        status = exc.status
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        message = exc.text if exc.text and not exc.text.startswith(f"{exc.status}:") else exc.reason
        response = error_response(exc.status, code, message or exc.reason)
        status = exc.status
    except ConnectionResetError as exc:
        if _client_connected(request):
            # A connection of ours to another service was reset, not the client's.
            response = _unexpected(request, request_id)
        else:
            # Nobody to answer (writing this fails quietly), but the request
            # gets its line: 499, nginx's "client closed request".
            status = CLIENT_CLOSED
            request[FACTS].error = str(exc) or "connection lost"
            response = web.Response(status=CLIENT_CLOSED)
    except Exception as exc:
        if _out_of_space(exc):
            log.warning("out of disk space", path=request.path, method=request.method,
                        error=str(exc))
            status = 507
            response = error_response(507, "insufficient_storage",
                                      "the server's disk is full; deleting data makes room")
        else:
            response = _unexpected(request, request_id)
    finally:
        structlog.contextvars.unbind_contextvars("request_id")
    if not response.prepared:
        response.headers[REQUEST_ID_HEADER] = request_id
        mode = request[FACTS].mode
        if mode is not None and "X-EchoFS-Mode" not in response.headers:
            response.headers["X-EchoFS-Mode"] = mode
    level = (logging.ERROR if status == 500 else
             logging.WARNING if status >= 500 or status == CLIENT_CLOSED else logging.INFO)
    if REQUEST_LOG.enabled(level):
        REQUEST_LOG.emit(level, "echofs.http", "request", {
            "method": request.method, "path": request.path, "status": status,
            "duration_ms": round((time.monotonic() - started) * 1000, 2),
            **request[FACTS].fields()})
    return response
