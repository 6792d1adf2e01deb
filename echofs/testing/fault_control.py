"""The HTTP control of fault proxies, both ends: :class:`ProxyGroup` holds
named proxies and serves the control endpoint over them; :class:`FaultControl`
drives that endpoint from another process (the chaos benchmark does, through
:class:`~echofs.testing.proxied_cluster.ProxiedCluster`). The endpoint's
routes are listed in :mod:`echofs.testing.faultproxy`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import aiohttp
from aiohttp import web

from echofs.core.errors import EchoFSError
from echofs.serving.json_body import read_json
from echofs.testing.fault_forwarding import FaultProxy
from echofs.testing.faults import FaultError, Faults


class ProxyGroup:
    """Named proxies and the HTTP control endpoint over them."""

    def __init__(self) -> None:
        self.proxies: dict[str, FaultProxy] = {}
        self._runner: web.AppRunner | None = None
        self.control_port: int | None = None

    async def add(self, name: str, upstream_host: str, upstream_port: int, *,
                  listen_port: int = 0, listen_host: str = "127.0.0.1") -> FaultProxy:
        if name in self.proxies:
            raise ValueError(f"proxy {name!r} exists already")
        proxy = FaultProxy(upstream_host, upstream_port, listen_host=listen_host,
                           listen_port=listen_port, name=name)
        await proxy.start()
        self.proxies[name] = proxy
        return proxy

    def _named(self, names: Iterable[str] | None) -> list[FaultProxy]:
        if names is None:
            return list(self.proxies.values())
        chosen = []
        for name in names:
            if name not in self.proxies:
                raise KeyError(name)
            chosen.append(self.proxies[name])
        return chosen

    def set_faults(self, faults: dict[str, Faults]) -> None:
        chosen = dict(zip(faults, self._named(faults), strict=True))
        for name, proxy in chosen.items():
            proxy.set_faults(faults[name])

    def heal(self, names: Iterable[str] | None = None) -> None:
        for proxy in self._named(names):
            proxy.heal()

    def reset_connections(self, names: Iterable[str] | None = None) -> int:
        return sum(proxy.reset_connections() for proxy in self._named(names))

    def describe(self) -> dict[str, Any]:
        return {name: proxy.describe() for name, proxy in self.proxies.items()}

    # -- HTTP control ------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(middlewares=[_json_errors])
        app.add_routes([
            web.get("/faults", self._get_faults),
            web.post("/faults", self._post_faults),
            web.post("/heal", self._post_heal),
            web.post("/reset", self._post_reset),
        ])
        return app

    async def serve_control(self, port: int = 0, host: str = "127.0.0.1") -> int:
        self._runner = web.AppRunner(self.app(), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port, reuse_address=True)
        await site.start()
        server = site._server
        assert server is not None and server.sockets  # type: ignore[union-attr]
        self.control_port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self.control_port

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        for proxy in self.proxies.values():
            await proxy.stop()

    async def _get_faults(self, request: web.Request) -> web.Response:
        return web.json_response({"proxies": self.describe()})

    async def _post_faults(self, request: web.Request) -> web.Response:
        body = await _body(request, required=True)
        try:
            faults = {str(name): Faults.from_json(value) for name, value in body.items()}
        except FaultError as exc:
            raise _error(400, "invalid_faults", str(exc)) from None
        if not faults:
            raise _error(400, "invalid_faults", "name at least one proxy")
        self._check_names(faults)
        self.set_faults(faults)
        return web.json_response({"proxies": self.describe()})

    async def _post_heal(self, request: web.Request) -> web.Response:
        names = _names(await _body(request, required=False))
        self._check_names(names)
        self.heal(names)
        return web.json_response({"proxies": self.describe()})

    async def _post_reset(self, request: web.Request) -> web.Response:
        names = _names(await _body(request, required=False))
        self._check_names(names)
        return web.json_response({"reset": self.reset_connections(names)})

    def _check_names(self, names: Iterable[str] | None) -> None:
        unknown = sorted(set(names or ()) - set(self.proxies))
        if unknown:
            raise _error(404, "unknown_proxy", f"no proxy named {', '.join(unknown)}")


def _error(status: int, code: str, message: str) -> web.HTTPException:
    return _HTTP_ERRORS[status](text=json.dumps({"error": {"code": code, "message": message}}),
                                content_type="application/json")


class _BodyTooLarge(web.HTTPClientError):
    # aiohttp's own 413 insists on sizes; ours carries the JSON error instead.
    status_code = 413


_HTTP_ERRORS: dict[int, type[web.HTTPException]] = {
    400: web.HTTPBadRequest, 404: web.HTTPNotFound, 405: web.HTTPMethodNotAllowed,
    413: _BodyTooLarge}


@web.middleware
async def _json_errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.content_type == "application/json":
            raise
        raise _HTTP_ERRORS.get(exc.status, web.HTTPBadRequest)(
            text=json.dumps({"error": {"code": "http_error", "message": exc.reason}}),
            content_type="application/json") from None


async def _body(request: web.Request, *, required: bool) -> dict[str, Any]:
    if not request.can_read_body:
        if required:
            raise _error(400, "invalid_json", "request body must be a JSON object")
        return {}
    try:
        body = await read_json(request)
    except EchoFSError as exc:
        raise _error(exc.status, exc.code, exc.message) from None
    if not isinstance(body, dict):
        raise _error(400, "invalid_json", "request body must be a JSON object")
    return body


def _names(body: dict[str, Any]) -> list[str] | None:
    if "proxies" not in body:
        return None
    names = body["proxies"]
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise _error(400, "invalid_proxies", "'proxies' must be a list of proxy names")
    return names


# -- the control endpoint's client ------------------------------------------------------


class FaultControl:
    """Drives a fault proxy process through its HTTP control endpoint."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    async def _call(self, method: str, path: str, body: Any = None) -> dict[str, Any]:
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as http, \
                http.request(method, f"{self.url}{path}", json=body) as resp:
            payload = await resp.json()
            if resp.status != 200:
                raise RuntimeError(f"fault proxy control: {resp.status} {payload}")
            return payload

    async def set(self, faults: dict[str, Faults]) -> None:
        await self._call("POST", "/faults", {n: f.to_json() for n, f in faults.items()})

    async def heal(self, names: Iterable[str] | None = None) -> None:
        await self._call("POST", "/heal", None if names is None else {"proxies": list(names)})

    async def reset(self, names: Iterable[str] | None = None) -> int:
        body = None if names is None else {"proxies": list(names)}
        return int((await self._call("POST", "/reset", body))["reset"])

    async def describe(self) -> dict[str, Any]:
        return (await self._call("GET", "/faults"))["proxies"]
