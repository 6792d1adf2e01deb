"""Request ids: one per client request, carried from the master's HTTP log
line to every worker's log line for the chunk calls it caused.

The id is bound in structlog's context variables for the request's task (and
so for every task that task creates: asyncio copies context variables at task
creation), sent to workers as gRPC metadata ``x-request-id``, and bound again
on the worker for the call it serves.
"""

from __future__ import annotations

import os
import re

import structlog

HTTP_HEADER = "X-Request-Id"
GRPC_METADATA_KEY = "x-request-id"

# A client may choose its id (to follow one request through the logs), but it
# travels into log lines and gRPC metadata, so only a short, plain token is
# taken as given; anything else is replaced by a fresh id.
_VALID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_request_id() -> str:
    # 16 hex digits, as a uuid4's first 16 were, without building a UUID.
    return os.urandom(8).hex()


def valid_request_id(raw: str | None) -> str | None:
    return raw if raw is not None and _VALID.fullmatch(raw) else None


def accept_request_id(raw: str | None) -> str:
    """The client's id if it is a plain token, else a new one."""
    return valid_request_id(raw) or new_request_id()


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return value if isinstance(value, str) else None
