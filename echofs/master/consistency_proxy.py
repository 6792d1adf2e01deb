"""The master's window on a remote controller: ``/api/v1/consistency/...``
is forwarded to the controller's REST API (``/v1/...``, ``/status``,
``/health``) so operators need one address. A controller that cannot be
reached is a 503, never a hang: the proxy has its own short timeout."""

from __future__ import annotations

import aiohttp
from aiohttp import web

from echofs.core.errors import Unavailable
from echofs.serving.json_body import MAX_JSON_BYTES, read_body

CONSISTENCY_PREFIX = "/api/v1/consistency"
_TIMEOUT = aiohttp.ClientTimeout(total=10)


class ConsistencyProxy:
    def __init__(self, controller_url: str) -> None:
        self.base = controller_url.rstrip("/")

    def routes(self) -> list[web.RouteDef]:
        return [web.route("*", CONSISTENCY_PREFIX + "/{tail:.*}", self.forward)]

    async def forward(self, request: web.Request) -> web.Response:
        tail = request.match_info["tail"]
        target = f"{self.base}/{tail}" if tail in ("status", "health") else \
            f"{self.base}/v1/{tail}"
        # Counted while it arrives: the master's app-wide limit is an upload's.
        body = await read_body(request, max_bytes=MAX_JSON_BYTES) \
            if request.can_read_body else None
        headers = {k: v for k, v in request.headers.items()
                   if k.lower() in ("content-type", "x-request-id")}
        try:
            async with aiohttp.ClientSession(timeout=_TIMEOUT) as session, session.request(
                    request.method, target, params=request.query, data=body,
                    headers=headers) as resp:
                payload = await resp.read()
                return web.Response(status=resp.status, body=payload,
                                    content_type=resp.content_type)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise Unavailable(f"controller at {self.base} unreachable: {exc}") from None
