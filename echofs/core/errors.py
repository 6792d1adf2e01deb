"""Every error EchoFS reports on purpose, as types.

Each carries a stable machine-readable ``code`` and the HTTP status it maps to;
the REST layer turns them into ``{"error": {"code", "message"}}`` in one place
(``echofs.serving.middleware``) so no handler formats errors by hand.
"""

from __future__ import annotations


class EchoFSError(Exception):
    """Base of all deliberate errors. Subclasses set ``status`` and ``code``."""

    status: int = 500
    code: str = "internal"

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code


class BadRequest(EchoFSError):
    status = 400
    code = "bad_request"


class InvalidName(BadRequest):
    code = "invalid_name"


class InvalidJSON(BadRequest):
    """A JSON body that does not parse, is not UTF-8, or nests too deep."""

    code = "invalid_json"


class TooManyParts(BadRequest):
    """A multipart form with more parts than any real upload needs."""

    code = "too_many_parts"


class Unauthorized(EchoFSError):
    """No credentials, or credentials that do not check out."""

    status = 401
    code = "unauthorized"


class Forbidden(EchoFSError):
    """Authenticated, but not allowed (admin-only endpoints)."""

    status = 403
    code = "forbidden"


class NotFound(EchoFSError):
    status = 404
    code = "not_found"


class Conflict(EchoFSError):
    status = 409
    code = "conflict"


class RequestTimeout(EchoFSError):
    """The client stopped sending its request body part-way
    (``HTTP_BODY_IDLE_TIMEOUT``): the request is abandoned."""

    status = 408
    code = "request_timeout"


class PayloadTooLarge(EchoFSError):
    status = 413
    code = "payload_too_large"


class FormTooLarge(PayloadTooLarge):
    """The fields of a multipart form (everything but the file) are too big."""

    code = "form_too_large"


class NotImplementedHere(EchoFSError):
    """The request uses an HTTP feature EchoFS does not implement (RFC 9110
    says 501), e.g. a transfer coding other than ``chunked``."""

    status = 501
    code = "not_implemented"


class TooManyRequests(EchoFSError):
    """A user went over the per-user request rate (``RATE_LIMIT_PER_MINUTE``)."""

    status = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class AuthBusy(TooManyRequests):
    """Too many logins are already waiting for a password hash on this master."""

    code = "auth_busy"


class RangeNotSatisfiable(EchoFSError):
    status = 416
    code = "range_not_satisfiable"

    def __init__(self, message: str, *, size: int) -> None:
        super().__init__(message)
        self.size = size


class InsufficientStorage(EchoFSError):
    """No room to store this: every store that could take it is down to its
    reserved free space (``STORE_RESERVE_BYTES``, ``METADATA_RESERVE_BYTES``).
    Reads and deletes still work; deleting data makes room."""

    status = 507
    code = "insufficient_storage"


class Unavailable(EchoFSError):
    """The cluster cannot do this right now (no quorum, no readable replica)."""

    status = 503
    code = "unavailable"


class QuorumNotReached(Unavailable):
    code = "quorum_not_reached"


class ChunkUnavailable(Unavailable):
    code = "chunk_unavailable"


class StoreUnavailable(Unavailable):
    """A chunk store's backend failed in a way worth retrying (throttled, 5xx,
    network): the master tries another replica, or the worker again later."""

    code = "store_unavailable"


class StoreMisconfigured(EchoFSError):
    """A chunk store cannot work as configured (no such bucket, access denied,
    bad credentials): retrying will not help; an operator must act."""

    code = "store_misconfigured"


class CorruptChunk(EchoFSError):
    """A stored chunk failed verification. Never shown to clients as such: the
    reader falls back to another replica, and only if none is good does the
    request fail, as :class:`ChunkUnavailable`."""

    code = "corrupt_chunk"


class ChunkMissing(EchoFSError):
    """A worker does not hold the requested chunk."""

    status = 404
    code = "chunk_missing"
