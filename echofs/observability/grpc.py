"""gRPC metrics, one log event per served call, and request-id propagation.

grpclib has no middleware; it has events. On a server, ``RecvRequest`` lets a
listener replace the function that will serve the call: we wrap it to time the
call, record its status, bind the caller's request id into the log context
and write one log event when it ends. ``RecvMessage`` (dispatched inside the
call's task) tells that wrapper which chunk the call is about. On a client
channel, ``SendRequest`` lets us add the current request id to the call's
metadata.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from dataclasses import dataclass
from typing import Any

import structlog
from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.events import RecvMessage, RecvRequest, SendMessage, SendRequest, listen
from grpclib.server import Server

from echofs.observability import metrics
from echofs.observability.request_id import (
    GRPC_METADATA_KEY,
    current_request_id,
    valid_request_id,
)
from echofs.observability.request_log import REQUEST_LOG

# Chunk ids are 64 hex digits; a prefix identifies one in a log line.
_CHUNK_PREFIX = 16


@dataclass
class _CallFacts:
    chunk: str | None = None
    bytes_in: int = 0
    bytes_out: int = 0


_CALL: contextvars.ContextVar[_CallFacts | None] = contextvars.ContextVar(
    "echofs_grpc_call", default=None)


def split_method(method_name: str) -> tuple[str, str]:
    """``/echofs.v1.WorkerService/PutChunk`` → (``echofs.v1.WorkerService``, ``PutChunk``)."""
    service, _, method = method_name.strip("/").rpartition("/")
    return service or "unknown", method or method_name


def _status_of(exc: BaseException) -> str:
    if isinstance(exc, GRPCError):
        return exc.status.name
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    if isinstance(exc, TimeoutError):
        return "DEADLINE_EXCEEDED"
    return "UNKNOWN"


def _level(status: str, request_id: str | None) -> int:
    # A missing chunk is an answer (the caller falls back and repairs), not a
    # server fault. Calls made for a client request are logged at INFO; the
    # background traffic (heartbeats, scrubbing, collection) only at DEBUG, or
    # it would drown the requests.
    if status not in ("OK", "NOT_FOUND"):
        return logging.WARNING
    return logging.INFO if request_id else logging.DEBUG


async def _on_request(event: RecvRequest) -> None:
    serve = event.method_func
    service, method = split_method(event.method_name)
    request_id = valid_request_id(_metadata_text(event.metadata.get(GRPC_METADATA_KEY)))

    async def observed(stream: Any) -> None:
        facts = _CallFacts()
        token = _CALL.set(facts)
        bound = {"request_id": request_id} if request_id else {}
        started = time.perf_counter()
        status = "OK"
        try:
            with structlog.contextvars.bound_contextvars(**bound):
                try:
                    await serve(stream)
                except BaseException as exc:
                    status = _status_of(exc)
                    raise
                finally:
                    elapsed = time.perf_counter() - started
                    metrics.GRPC_REQUESTS.labels(service, method, status).inc()
                    metrics.GRPC_LATENCY.labels(service, method).observe(elapsed)
                    _log_call(service, method, status, elapsed, facts.chunk,
                              facts.bytes_in or facts.bytes_out, request_id)
        finally:
            _CALL.reset(token)

    event.method_func = observed


def _log_call(service: str, method: str, status: str, elapsed: float, chunk: str | None,
              size: int, request_id: str | None) -> None:
    level = _level(status, request_id)
    if not REQUEST_LOG.enabled(level):
        return
    fields: dict[str, object] = {
        "service": service, "method": method, "status": status,
        "duration_ms": round(elapsed * 1000, 2),
    }
    if chunk:
        fields["chunk"] = chunk
    if size:
        fields["bytes"] = size
    if request_id:
        fields["request_id"] = request_id
    REQUEST_LOG.emit(level, "echofs.rpc", "rpc", fields)


def log_batch_item(service: str, method: str, outcome: BaseException | None, elapsed: float,
                   chunk_id: str, size: int, request_id: str) -> None:
    """The log event of one item of a batch call, as if it were a call of
    its own: the batch call's own event names no request (it serves several),
    so a request's trace reaches the worker through its items' events."""
    status = "OK" if outcome is None else _status_of(outcome)
    _log_call(service, method, status, elapsed, chunk_id[:_CHUNK_PREFIX], size,
              valid_request_id(request_id) if request_id else None)


def _metadata_text(value: object) -> str | None:
    if isinstance(value, bytes):
        return value.decode("ascii", "replace")
    return value if isinstance(value, str) else None


async def _on_recv_message(event: RecvMessage) -> None:
    facts = _CALL.get()
    if facts is None:
        return
    chunk_id = getattr(event.message, "chunk_id", None)
    if isinstance(chunk_id, str) and chunk_id:
        facts.chunk = chunk_id[:_CHUNK_PREFIX]
    frame = getattr(event.message, "frame", None)
    if isinstance(frame, bytes):
        facts.bytes_in += len(frame)


async def _on_send_message(event: SendMessage) -> None:
    facts = _CALL.get()
    if facts is None:
        return
    data = getattr(event.message, "data", None)
    if isinstance(data, bytes):
        facts.bytes_out += len(data)


def instrument_server(server: Server) -> Server:
    """Count, time and log every call ``server`` serves."""
    listen(server, RecvRequest, _on_request)
    listen(server, RecvMessage, _on_recv_message)
    listen(server, SendMessage, _on_send_message)
    return server


async def _on_send_request(event: SendRequest) -> None:
    request_id = current_request_id()
    if request_id is not None and valid_request_id(request_id):
        event.metadata[GRPC_METADATA_KEY] = request_id


def propagate_request_id(channel: Channel) -> Channel:
    """Calls on ``channel`` carry the current request id (if any) to the server."""
    listen(channel, SendRequest, _on_send_request)
    return channel
