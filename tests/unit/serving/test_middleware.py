"""The error middleware: every failure leaves as a JSON error, never a traceback."""

from __future__ import annotations

import asyncio
import io
import logging

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from echofs.core.errors import NotFound, RangeNotSatisfiable
from echofs.observability.request_log import RequestLog
from echofs.serving import middleware
from echofs.serving.endpoints import role_app, serving
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
                                                 "message": "no such thing"},
                                       "success": False, "message": "no such thing"}
        resp = await client.get("/range")
        assert resp.status == 416 and resp.headers["Content-Range"] == "bytes */10"
        resp = await client.get("/no-route")
        assert resp.status == 404
        assert (await resp.json())["error"]["code"] == "not_found"
        resp = await client.post("/missing")
        assert resp.status == 405
        assert (await resp.json())["error"]["code"] == "method_not_allowed"


async def test_a_reset_of_our_own_upstream_is_a_500_not_a_client_hang_up(caplog):
    """ConnectionResetError means "the client left" only when the client's
    connection is gone; from a connection of ours (to the controller, say)
    it is an unexpected failure, answered 500."""
    async def upstream_reset(request: web.Request) -> web.Response:
        raise ConnectionResetError("controller reset the connection")

    app = web.Application(middlewares=[error_middleware])
    app.add_routes([web.get("/proxy", upstream_reset)])
    caplog.set_level(logging.INFO)
    async with TestClient(TestServer(app)) as client:
        resp = await client.get("/proxy")
        assert resp.status == 500
        assert (await resp.json())["error"]["code"] == "internal"
    assert any("unhandled error" in r.getMessage() for r in caplog.records)


async def test_an_answer_the_server_cuts_short_is_one_warning_line_and_no_traceback(
        caplog, monkeypatch):
    """What the download path does when no replica can serve the rest:
    abort the connection short of Content-Length and raise
    ConnectionResetError. The client sees a cut body; the log one line."""
    async def cut_short(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"x" * 10)
        assert request.transport is not None
        request.transport.abort()
        raise ConnectionResetError("download aborted: no replica")

    out = io.StringIO()
    request_log = RequestLog()
    request_log.configure(level=logging.INFO, json_format=False, context={}, stream=out)
    monkeypatch.setattr(middleware, "REQUEST_LOG", request_log)
    caplog.set_level(logging.INFO)
    async with serving(role_app([web.get("/cut", cut_short)]), host="127.0.0.1",
                       http_port=0) as up, aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.ClientPayloadError):
            async with http.get(f"http://127.0.0.1:{up.port}/cut") as resp:
                await resp.read()
        await asyncio.sleep(0.1)
    request_log.flush()
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "[warning" in lines[0], lines
    assert "status=499" in lines[0] and "error=download aborted" in lines[0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]


@pytest.mark.parametrize("failure", ["sqlite", "enospc"])
async def test_a_disk_filled_by_someone_else_is_a_507(failure):
    import errno
    import sqlite3

    import sqlalchemy.exc

    async def full(request: web.Request) -> web.Response:
        if failure == "enospc":
            raise OSError(errno.ENOSPC, "No space left on device")
        try:
            raise sqlite3.OperationalError("database or disk is full")
        except sqlite3.OperationalError as exc:  # as SQLAlchemy wraps it
            raise sqlalchemy.exc.OperationalError("DELETE ...", (), exc) from exc

    app = web.Application(middlewares=[error_middleware])
    app.add_routes([web.delete("/full", full)])
    async with TestClient(TestServer(app)) as client:
        resp = await client.delete("/full")
        assert resp.status == 507
        assert (await resp.json())["error"]["code"] == "insufficient_storage"
