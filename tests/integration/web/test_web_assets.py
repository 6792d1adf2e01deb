"""The master serves the web UI: the page at /, its assets under /static/,
with a strict content security policy, and nothing else from disk."""

from __future__ import annotations

import pytest

from echofs.testing.http import error_of
from echofs.testing.node import running_node
from echofs.web import STATIC_DIR


async def test_the_page_and_its_assets(http):
    async with http.get("/") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        html = await resp.text()
        csp = resp.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert '<script src="/static/app.js"' in html and "/static/style.css" in html
    for name, kind in [("app.js", "javascript"), ("style.css", "text/css")]:
        async with http.get(f"/static/{name}") as resp:
            assert resp.status == 200, name
            assert kind in resp.content_type
            assert await resp.read() == (STATIC_DIR / name).read_bytes()
            assert resp.headers["Cache-Control"] == "no-cache"


@pytest.mark.parametrize("path", ["/static/nope.js", "/static/..%2Fapp.js",
                                  "/static/%2E%2E/__init__.py", "/static/"])
async def test_only_shipped_assets_are_served(http, path):
    async with http.get(path) as resp:
        assert resp.status == 404, path
        assert (await error_of(resp))["code"] == "not_found"


async def test_the_page_loads_without_a_token_when_accounts_are_on(tmp_path):
    import aiohttp

    async with running_node(tmp_path / "d", jwt_secret="p" * 40) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        for path in ("/", "/static/app.js", "/static/style.css"):
            async with http.get(path) as resp:
                assert resp.status == 200, path
        async with http.get("/api/v1/files") as resp:
            assert resp.status == 401
