"""The bounded JSON reader: byte limit while reading, depth limit before parsing."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from echofs.core.errors import InvalidJSON
from echofs.serving.json_body import MAX_DEPTH, nesting_depth, parse_json, read_json
from echofs.serving.middleware import error_middleware


@pytest.mark.parametrize(("text", "depth"), [
    ("1", 0), ('"[[["', 0), ("[]", 1), ("[[], {}]", 2), ('{"a": [{"b": []}]}', 4),
    ('["\\"[[[", 1]', 1), ('["\\\\", [2]]', 2), ('{"k\\"": "]]]]"}', 1),
    ("[" * 100 + "]" * 100, 100),
])
def test_nesting_depth_of_valid_json_is_exact(text, depth):
    assert nesting_depth(text.encode()) == depth
    json.loads(text)  # the cases are valid JSON


@pytest.mark.parametrize("text", [
    # Brackets an attacker might try to hide from the check in a "string":
    '"\\"' + "[" * 1000, '\\"' + "[" * 1000, '"' + "[" * 1000, "[" * 1000 + '"',
    '["a\\\\"' + "[" * 1000, "}" * 10 + "[" * 1000,
])
def test_nesting_depth_never_underestimates_the_parser(text):
    # A parser with recursion bounded below the claimed depth must get no
    # further than a syntax error: the claim covers whatever it would recurse.
    claimed = nesting_depth(text.encode())
    assert claimed > MAX_DEPTH
    with pytest.raises(InvalidJSON, match="nested at most"):
        parse_json(text.encode())


def test_a_hundred_thousand_brackets_are_refused_before_parsing():
    started = time.monotonic()
    with pytest.raises(InvalidJSON, match="nested at most 64 levels"):
        parse_json(b"[" * 100_000 + b"]" * 100_000)
    # Pathological-for-regex input (a string of escaped quotes) stays linear.
    with pytest.raises(InvalidJSON):
        parse_json(b'"' + b'\\"' * 500_000)
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("body", [b"", b"{", b"\xff\xfe{}", b"1" * 5000, b"{'a': 1}",
                                  b"[1,]", b"\x00"])
def test_malformed_bodies_are_invalid_json(body):
    with pytest.raises(InvalidJSON):
        parse_json(body)


def test_depth_at_the_limit_parses():
    doc = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert parse_json(doc.encode()) == json.loads(doc)
    with pytest.raises(InvalidJSON):
        parse_json(("[" + doc + "]").encode())


def _app() -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response(await read_json(request, max_bytes=1000))

    app = web.Application(middlewares=[error_middleware])
    app.add_routes([web.post("/echo", echo)])
    return app


async def test_read_json_over_http():
    async with TestClient(TestServer(_app())) as client:
        resp = await client.post("/echo", data=b'{"a": [1, 2]}')
        assert resp.status == 200 and await resp.json() == {"a": [1, 2]}

        resp = await client.post("/echo", data=b"[" * 500)
        assert resp.status == 400
        assert (await resp.json())["error"]["code"] == "invalid_json"

        resp = await client.post("/echo", data=b" " * 1001)  # declared too large
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "payload_too_large"

        async def streamed() -> AsyncIterator[bytes]:  # chunked: no length to check
            for _ in range(100):
                yield b" " * 100

        resp = await client.post("/echo", data=streamed())
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "payload_too_large"
