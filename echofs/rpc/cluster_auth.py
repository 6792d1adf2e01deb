"""The shared cluster token on gRPC between roles.

When ``CLUSTER_TOKEN`` is set, every call carries it as metadata and every
server refuses calls without it (UNAUTHENTICATED): a worker that does not know
it cannot register, and nobody without it can read or write chunks.
"""

from __future__ import annotations

import hmac

from grpclib import GRPCError
from grpclib.client import Channel
from grpclib.const import Status
from grpclib.events import RecvRequest, SendRequest, listen
from grpclib.server import Server

METADATA_KEY = "x-echofs-cluster-token"


def require_cluster_token(server: Server, token: str | None) -> Server:
    if token:
        expected = token.encode()

        async def check(event: RecvRequest) -> None:
            given = event.metadata.get(METADATA_KEY, "")
            given_bytes = given.encode() if isinstance(given, str) else bytes(given)
            if not hmac.compare_digest(given_bytes, expected):
                raise GRPCError(Status.UNAUTHENTICATED, "cluster token missing or wrong")

        listen(server, RecvRequest, check)
    return server


def send_cluster_token(channel: Channel, token: str | None) -> Channel:
    if token:
        async def attach(event: SendRequest) -> None:
            event.metadata[METADATA_KEY] = token

        listen(channel, SendRequest, attach)
    return channel
