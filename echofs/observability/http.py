"""HTTP metrics for every role's aiohttp app, and the ``GET /metrics`` route.

Install :func:`metrics_middleware` *inside* the error middleware
(``middlewares=[error_middleware, metrics_middleware]``): it then sees the
handler's typed errors (a quorum failure is counted as such) and still the
status each becomes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from echofs.core.errors import EchoFSError, QuorumNotReached
from echofs.observability import metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# The routes that move file bodies, as route templates (what ``route`` labels
# carry); a unit test checks each exists in the master's app.
UPLOAD_ROUTES = frozenset({("POST", "/api/v1/files/upload"),
                           ("POST", "/api/v1/files/upload/consistency"),
                           ("PUT", "/api/v1/files/content/{path}"),
                           # A resumable upload finishes when its session completes.
                           ("POST", "/api/v1/files/upload/{session_id}/complete")})
DOWNLOAD_ROUTES = frozenset({("GET", "/api/v1/files/{file_id}/download"),
                             ("GET", "/api/v1/files/content/{path}")})
# aiohttp's status for a client that went away before the response was done
# has no HTTP code; nginx's convention says what happened.
_CLIENT_CLOSED = 499


def route_template(request: web.Request) -> str:
    """The matched route's template (``/api/v1/files/{file_id}``), never the
    raw path: one series per route, not per file."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


def _status_of(exc: BaseException) -> int:
    if isinstance(exc, EchoFSError):
        return exc.status
    if isinstance(exc, web.HTTPException):
        return exc.status
    if isinstance(exc, (ConnectionResetError, asyncio.CancelledError)):
        return _CLIENT_CLOSED
    return 500


def _outcome(status: int) -> str:
    return "ok" if status < 400 else "rejected" if status < 500 else "failed"


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    metrics.HTTP_IN_FLIGHT.inc()
    try:
        response = await handler(request)
        status = response.status
        if response.headers.get("X-EchoFS-Stale") == "true":
            metrics.STALE_READS.inc()
        return response
    except BaseException as exc:
        status = _status_of(exc)
        if isinstance(exc, QuorumNotReached):
            metrics.QUORUM_FAILURES.inc()
        raise
    finally:
        metrics.HTTP_IN_FLIGHT.dec()
        method, route = request.method, route_template(request)
        metrics.HTTP_REQUESTS.labels(method, route, str(status)).inc()
        metrics.HTTP_LATENCY.labels(method, route).observe(time.perf_counter() - started)
        if (method, route) in UPLOAD_ROUTES:
            metrics.UPLOADS.labels(_outcome(status)).inc()
        elif (method, route) in DOWNLOAD_ROUTES:
            metrics.DOWNLOADS.labels(_outcome(status)).inc()


async def metrics_handler(request: web.Request) -> web.Response:
    body = await metrics.render()
    # CONTENT_TYPE_LATEST carries its own charset parameter.
    return web.Response(body=body, headers={"Content-Type": metrics.CONTENT_TYPE_LATEST})


def metrics_routes() -> list[web.RouteDef]:
    return [web.get("/metrics", metrics_handler)]
