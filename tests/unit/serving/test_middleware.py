"""The error middleware: every failure leaves as a JSON error, never a traceback."""

from __future__ import annotations

import logging

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from echofs.core.errors import NotFound, RangeNotSatisfiable
from echofs.serving.middleware import error_middleware


def _app() -> web.Application:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("secret internal detail")

    async def missing(request: web.Request) -> web.Response:
        raise NotFound("no such thing")

    async def unsatisfiable(request: web.Request) -> web.Response:
        raise RangeNotSatisfiable("nope", size=10)

    app = web.Application(middlewares=[error_middleware])
    app.add_routes([web.get("/boom", boom), web.get("/missing", missing),
                    web.get("/range", unsatisfiable)])
    return app


async def test_unexpected_exception_is_json_500_without_details(caplog):
    caplog.set_level(logging.INFO)
    async with TestClient(TestServer(_app())) as client:
        resp = await client.get("/boom", headers={"X-Request-Id": "req-123"})
        assert resp.status == 500
        body = await resp.json()
        assert body["error"]["code"] == "internal"
        assert "secret" not in body["error"]["message"]
        assert "Traceback" not in await resp.text()
        assert "req-123" in body["error"]["message"]
        assert resp.headers["X-Request-Id"] == "req-123"
    assert any("unhandled error" in r.getMessage() for r in caplog.records)


async def test_domain_errors_and_framework_errors_map_to_status():
    async with TestClient(TestServer(_app())) as client:
        resp = await client.get("/missing")
        assert resp.status == 404
        assert (await resp.json()) == {"error": {"code": "not_found",
                                                 "message": "no such thing"}}
        resp = await client.get("/range")
        assert resp.status == 416 and resp.headers["Content-Range"] == "bytes */10"
        resp = await client.get("/no-route")
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
        resp = await client.post("/missing")
        assert resp.status == 405
        assert (await resp.json())["error"]["code"] == "method_not_allowed"
