"""Transfer codings: EchoFS understands ``chunked`` and nothing else.

aiohttp's parser de-chunks a body whose last coding is ``chunked`` and
silently ignores any coding listed before it, so ``Transfer-Encoding: gzip,
chunked`` would store the compressed bytes as though they were the file. A
server that meets a transfer coding it does not implement answers 501
(RFC 9112, section 6.1) — before any handler reads a byte.
"""

from __future__ import annotations

from aiohttp import web

from echofs.core.errors import NotImplementedHere
from echofs.serving.middleware import Handler

SUPPORTED = ("chunked",)


@web.middleware
async def transfer_coding_middleware(request: web.Request,
                                     handler: Handler) -> web.StreamResponse:
    codings = request_codings(request)
    if codings and tuple(codings) != SUPPORTED:
        raise NotImplementedHere(
            f"transfer coding {', '.join(codings)!r} is not supported: send the body "
            "as it is, with Content-Length or 'Transfer-Encoding: chunked' alone",
            code="unsupported_transfer_coding")
    return await handler(request)


def request_codings(request: web.Request) -> list[str]:
    """The request's transfer codings in order, over every Transfer-Encoding line."""
    return [coding.strip().lower()
            for line in request.headers.getall("Transfer-Encoding", ())
            for coding in line.split(",") if coding.strip()]
