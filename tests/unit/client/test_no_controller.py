"""Admin tools against a master with no controller say so plainly, instead of
a bare "Not Found (HTTP 404)"."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from echofs.cli import build_parser
from echofs.client import actions
from echofs.client.errors import EchoFSClientError, NotFound


async def _not_found(request: web.Request) -> web.Response:
    return web.json_response({"error": {"code": "not_found", "message": "Not Found"}},
                             status=404)


async def _status(request: web.Request) -> web.Response:
    return web.json_response({"override": None})


async def _serve(routes: list[web.RouteDef]) -> TestServer:
    app = web.Application()
    app.add_routes(routes)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    return server


@pytest.fixture(autouse=True)
def no_saved_login(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("ECHOFS_TOKEN", raising=False)


async def test_every_controller_tool_names_the_missing_controller():
    server = await _serve([])  # a master without /api/v1/consistency: every path 404s
    try:
        for argv in (["admin", "override"], ["admin", "override", "strong"],
                     ["admin", "mode", "f" * 32], ["admin", "critical-keys"],
                     ["admin", "transitions"], ["admin", "hint", "f" * 32, "auto"]):
            args = build_parser().parse_args([*argv, "--server", str(server.make_url(""))])
            with pytest.raises(EchoFSClientError) as raised:
                await actions._run(args)
            assert raised.value.code == "no_controller", argv
            assert str(raised.value).startswith("no controller connected"), argv
    finally:
        await server.close()


async def test_a_missing_file_stays_a_missing_file_when_a_controller_answers():
    server = await _serve([
        web.get("/api/v1/consistency/status", _status),
        web.get("/api/v1/consistency/mode", _not_found),
    ])
    try:
        args = build_parser().parse_args(["admin", "mode", "f" * 32,
                                          "--server", str(server.make_url(""))])
        with pytest.raises(NotFound):
            await actions._run(args)
    finally:
        await server.close()
