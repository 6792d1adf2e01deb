"""Errors the client raises: one type, with the server's status, code and message.

The server always answers errors as ``{"error": {"code", "message"}}``; the
client keeps those two fields as they are, so a script can branch on
``code`` and a person reads ``message``. Subclasses exist for the statuses a
caller typically handles differently (log in again, not there, try later).
"""

from __future__ import annotations


class EchoFSClientError(Exception):
    """A request that did not succeed.

    ``status`` is the HTTP status, or 0 when no response arrived at all
    (server unreachable, connection cut, integrity check failed locally).
    """

    def __init__(self, status: int, code: str, message: str,
                 request_id: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id

    def __str__(self) -> str:
        where = f"HTTP {self.status}, " if self.status else ""
        return f"{self.message} ({where}{self.code})"

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(status={self.status}, code={self.code!r}, "
                f"message={self.message!r})")


class Unauthorized(EchoFSClientError):
    """401: no token, or a bad or expired one; log in again."""


class Forbidden(EchoFSClientError):
    """403: authenticated, but the account may not do this (admin only)."""


class NotFound(EchoFSClientError):
    """404: no such file, version or route (other users' files look the same)."""


class Unavailable(EchoFSClientError):
    """503: not enough workers to honour the file's consistency mode right now."""


class ConnectionFailed(EchoFSClientError):
    """No HTTP answer: the server is unreachable or the connection broke."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "unreachable", message)


class IntegrityError(EchoFSClientError):
    """Downloaded bytes do not match what the server promised (size or BLAKE3)."""

    def __init__(self, message: str) -> None:
        super().__init__(0, "integrity", message)


_BY_STATUS: dict[int, type[EchoFSClientError]] = {
    401: Unauthorized, 403: Forbidden, 404: NotFound, 503: Unavailable,
}


def error_for(status: int, code: str, message: str,
              request_id: str | None = None) -> EchoFSClientError:
    return _BY_STATUS.get(status, EchoFSClientError)(status, code, message, request_id)
