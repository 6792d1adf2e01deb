"""How many connections one HTTP server holds open, and the answer to the rest.

Every open connection costs a file descriptor, and descriptors run out for
everything at once: one run of 20,000 idle half-sent connections left no
descriptor for uploads, metadata or chunk files. Above the limit a new
connection gets a complete ``503`` JSON answer with ``Retry-After`` and is
closed — a fast, clear "busy" instead of a hang or a reset.
"""

from __future__ import annotations

import json
import resource
from http import HTTPStatus

from echofs.serving.flood_log import ThrottledWarning

# What a refused client is told to wait before trying again, in seconds.
RETRY_AFTER = 1
# The fewest connections the automatic limit allows, however low the
# process's open-file limit.
_MIN_AUTOMATIC = 16


def automatic_limit() -> int:
    """Half the process's open-file limit: the other half stays for what the
    server itself opens (chunk files, the metadata store, connections to
    workers and the controller)."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 1 << 20
    return max(_MIN_AUTOMATIC, soft // 2)


def raw_json_response(status: int, code: str, message: str,
                      headers: dict[str, str] | None = None) -> bytes:
    """A whole HTTP/1.1 error response, ``{"error": {"code", "message"}}``
    (with ``success`` and ``message`` as :func:`~echofs.serving.middleware.error_response`),
    that closes the connection: for answers written straight to a transport,
    before (or instead of) aiohttp's request handling."""
    body = json.dumps({"error": {"code": code, "message": message},
                       "success": False, "message": message}).encode()
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
             "Content-Type: application/json; charset=utf-8",
             f"Content-Length: {len(body)}", "Connection: close",
             *(f"{name}: {value}" for name, value in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class ConnectionLimit:
    """At most ``limit`` connections open at once; the count is kept by the
    connections themselves (:meth:`try_open` when made, :meth:`close` when
    lost)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("a connection limit must be at least 1")
        self.limit = limit
        self.open = 0
        self.refused = 0
        self._refusals = ThrottledWarning()
        self.refusal = raw_json_response(
            503, "too_many_connections",
            f"the server holds its limit of {limit} open connections; "
            f"retry in {RETRY_AFTER} s", {"Retry-After": str(RETRY_AFTER)})

    def try_open(self) -> bool:
        if self.open >= self.limit:
            self.refused += 1
            self._refusals.warn("connection limit reached: %d connections open, new ones are "
                                "refused with 503 (HTTP_MAX_CONNECTIONS)", self.open)
            return False
        self.open += 1
        return True

    def close(self) -> None:
        self.open -= 1
