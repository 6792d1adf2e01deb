"""The S3 endpoint's own HTTP site, inside its master's lifecycle.

Served with the same connection limits and timeouts as the REST port
(:func:`echofs.serving.endpoints.serving`); stopped with the master. The
default port (9000) may already be taken on a machine that runs several
masters or another S3 server: then the master starts without S3 and says
so; a port the operator chose must bind, or the master does not start.
"""

from __future__ import annotations

import errno
import logging
import ssl
from contextlib import AsyncExitStack

from aiohttp import web

from echofs.config import Settings
from echofs.serving.endpoints import serving
from echofs.serving.http_protocol import HttpLimits

log = logging.getLogger("echofs.s3")
# As the REST port: requests in flight get this long to finish at shutdown.
_SHUTDOWN_GRACE = 10.0


async def serve_s3(stack: AsyncExitStack, app: web.Application,
                   settings: Settings) -> int | None:
    """Serve ``app`` until ``stack`` closes; the bound port, or None if off."""
    port = settings.s3_listen_port
    if port is None:
        return None
    try:
        served = await stack.enter_async_context(serving(
            app, host=settings.host, http_port=port, shutdown_grace=_SHUTDOWN_GRACE,
            limits=HttpLimits.from_settings(settings), ssl_context=tls_context(settings),
            auto_decompress=False))
    except OSError as exc:
        if settings.s3_port_required or exc.errno != errno.EADDRINUSE:
            raise OSError(exc.errno, f"the S3 endpoint cannot listen on {settings.host}:{port} "
                          f"(--s3-port, S3_PORT; 'off' turns it off): {exc.strerror}") from exc
        log.warning("S3 endpoint not started: port %d is in use (set --s3-port or S3_PORT)",
                    port)
        return None
    return served.port


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """HTTPS when a certificate is configured (S3_TLS_CERT, S3_TLS_KEY)."""
    if settings.s3_tls_cert is None or settings.s3_tls_key is None:
        return None
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.s3_tls_cert, settings.s3_tls_key)
    return context
