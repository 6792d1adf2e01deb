"""The web UI: static files shipped in this package, served by the master.

``/`` is the single page (``static/index.html``), ``/static/NAME`` its
assets and ``/favicon.ico`` the icon browsers ask for on their own.
Plain HTML, CSS and JavaScript: nothing to build, so ``echofs serve``
is all a person needs. The UI talks only to the public REST API.

Only files that exist in ``static/`` when the app is built are served — the
name is looked up in that fixed table, so no request path reaches the
filesystem. Responses carry a strict Content-Security-Policy (same-origin
scripts only): file names are user-supplied text, and the UI never renders
them as HTML, but the policy is the second line of defence.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"

_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
        "form-action 'self'")
_HEADERS = {
    # Revalidate every time (ETag/Last-Modified make that cheap), so a
    # restarted master with a newer UI is picked up at once.
    "Cache-Control": "no-cache",
    "Content-Security-Policy": _CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _assets() -> dict[str, Path]:
    return {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}


def _serve(path: Path) -> web.FileResponse:
    response = web.FileResponse(path, headers=_HEADERS)
    response.content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    if response.content_type.startswith("text/") or path.suffix == ".js":
        response.charset = "utf-8"
    return response


def routes() -> list[web.RouteDef]:
    assets = _assets()
    index = assets["index.html"]

    async def page(request: web.Request) -> web.StreamResponse:
        return _serve(index)

    async def asset(request: web.Request) -> web.StreamResponse:
        path = assets.get(request.match_info["name"])
        if path is None:
            raise web.HTTPNotFound(text=f"no UI asset named {request.match_info['name']!r}")
        return _serve(path)

    async def favicon(request: web.Request) -> web.StreamResponse:
        # Browsers ask for /favicon.ico on any page of the origin (an API
        # document opened directly too), whatever the page links.
        return _serve(assets["favicon.ico"])

    return [web.get("/", page), web.get("/static/{name}", asset),
            web.get("/favicon.ico", favicon)]
