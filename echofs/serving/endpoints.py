"""A role's network faces, its HTTP app and its gRPC server, served with one
lifecycle.

Start: gRPC first, then HTTP, so by the time the HTTP port answers (what
health checks and clients wait for) everything behind it answers too. Stop,
the reverse: the HTTP site stops accepting and drains the requests in flight
(up to the shutdown grace), then the gRPC server closes.

Every role's site binds with ``reuse_address`` (a restarted role gets its
port back at once) and without aiohttp's access log (the request middleware
in :mod:`echofs.serving.middleware` writes one line per request instead).
Its connections have the header and body-idle timeouts and the connection
cap of :mod:`echofs.serving.http_protocol`, and running out of descriptors
is logged once per window (:mod:`echofs.serving.flood_log`).
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from grpclib.server import Server

from echofs.config import Settings
from echofs.observability.grpc import instrument_server
from echofs.observability.http import metrics_middleware, metrics_routes
from echofs.rpc.cluster_auth import require_cluster_token
from echofs.serving.flood_log import accept_exhaustion_logged
from echofs.serving.http_protocol import GuardedAppRunner, HttpLimits
from echofs.serving.middleware import error_middleware


@dataclass(frozen=True, slots=True)
class Served:
    """What :func:`serving` brought up: the HTTP runner (and so its app), the
    bound HTTP port (the real one when asked for port 0), and where gRPC
    listens, if anywhere."""

    runner: web.AppRunner
    port: int
    grpc_port: int | None


def role_grpc_server(handlers: Sequence[Any], cluster_token: str | None, *,
                     server_type: type[Server] = Server) -> Server:
    """A role's gRPC server: every call counted and timed, and refused
    without the cluster token when one is set."""
    return require_cluster_token(instrument_server(server_type(handlers)), cluster_token)


def role_app(routes: Iterable[web.AbstractRouteDef]) -> web.Application:
    """The HTTP face of a worker or controller: its routes and ``/metrics``,
    with the same error and metrics middleware as the master's API."""
    app = web.Application(middlewares=[error_middleware, metrics_middleware])
    app.add_routes(routes)
    app.add_routes(metrics_routes())
    return app


@asynccontextmanager
async def serving(app: web.Application, *, host: str, http_port: int,
                  grpc: Server | None = None, grpc_port: int | None = None,
                  shutdown_grace: float | None = None,
                  limits: HttpLimits | None = None,
                  ssl_context: ssl.SSLContext | None = None,
                  auto_decompress: bool = True) -> AsyncIterator[Served]:
    """Serve ``app`` on ``host:http_port`` and ``grpc`` (if given) on
    ``host:grpc_port`` until the block exits. ``shutdown_grace``: seconds
    in-flight HTTP requests get to finish (unset: aiohttp's default);
    ``limits``: what HTTP clients are allowed (unset: the defaults of
    :class:`~echofs.config.Settings`); ``ssl_context``: serve HTTPS (the S3
    endpoint, when given a certificate); ``auto_decompress=False``: request
    bodies reach the app as sent, whatever their Content-Encoding (S3 stores
    a gzip object as gzip)."""
    async with AsyncExitStack() as stack:
        stack.enter_context(accept_exhaustion_logged(asyncio.get_running_loop()))
        if grpc is not None:
            assert grpc_port is not None, "a gRPC server needs its port"
            await grpc.start(host, grpc_port)
            stack.push_async_callback(_close_grpc, grpc)
        grace: dict[str, float] = ({} if shutdown_grace is None
                                   else {"shutdown_timeout": shutdown_grace})
        runner = GuardedAppRunner(
            app, limits=limits or HttpLimits.from_settings(Settings()), access_log=None,
            auto_decompress=auto_decompress, **grace)
        await runner.setup()
        stack.push_async_callback(runner.cleanup)  # stop accepting, drain in flight
        await web.TCPSite(runner, host, http_port, reuse_address=True,
                          ssl_context=ssl_context).start()
        yield Served(runner, int(runner.addresses[0][1]),
                     grpc_port if grpc is not None else None)


async def _close_grpc(server: Server) -> None:
    server.close()
    await server.wait_closed()
