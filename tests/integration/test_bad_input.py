"""Hostile and broken requests get a clear 4xx JSON error, never a 500."""

from __future__ import annotations

import asyncio
import os
import urllib.parse

import aiohttp
import pytest
from yarl import URL

from echofs.testing.http import error_of, put_raw, upload
from echofs.testing.node import running_node, stored_chunks
from echofs.testing.waiting import eventually

MIB = 1024 * 1024


async def _list(http) -> list[dict]:
    async with http.get("/api/v1/files") as resp:
        return (await resp.json())["files"]


async def test_malformed_multipart_is_400(http):
    headers = {"Content-Type": "multipart/form-data; boundary=XYZ"}
    for body in [b"garbage without any boundary", b"--XYZ\r\nno-headers-end", b""]:
        async with http.post("/api/v1/files/upload", data=body, headers=headers) as resp:
            assert resp.status == 400, body
            assert (await error_of(resp))["code"] in ("malformed_multipart", "missing_file")
    assert await _list(http) == []


async def test_multipart_without_boundary_is_400(http):
    headers = {"Content-Type": "multipart/form-data"}
    async with http.post("/api/v1/files/upload", data=b"x", headers=headers) as resp:
        assert resp.status == 400
        assert (await error_of(resp))["code"] == "malformed_multipart"


async def test_not_multipart_is_400(http):
    async with http.post("/api/v1/files/upload", json={"file": "x"}) as resp:
        assert resp.status == 400
        assert (await error_of(resp))["code"] == "not_multipart"


async def test_missing_file_field_is_400(http):
    form = aiohttp.FormData(default_to_multipart=True)
    form.add_field("user_id", "someone")
    async with http.post("/api/v1/files/upload", data=form) as resp:
        assert resp.status == 400
        assert (await error_of(resp))["code"] == "missing_file"


async def test_file_field_without_name_needs_a_path(http):
    def body(extra: str = "") -> bytes:
        return (
            "--B\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\ndata\r\n"
            + extra + "--B--\r\n"
        ).encode()

    headers = {"Content-Type": "multipart/form-data; boundary=B"}
    async with http.post("/api/v1/files/upload", data=body(), headers=headers) as resp:
        assert resp.status == 400
        assert (await error_of(resp))["code"] == "invalid_name"
    path_field = "--B\r\nContent-Disposition: form-data; name=\"path\"\r\n\r\ngiven/n.bin\r\n"
    async with http.post("/api/v1/files/upload", data=body(path_field),
                         headers=headers) as resp:
        assert resp.status == 201, await resp.text()
        assert (await resp.json())["path"] == "given/n.bin"


@pytest.mark.parametrize("name", ["../escape.txt", "a/../../b", "/etc/passwd", "a\x00b",
                                  "dir\\..\\x", "x" * 10_000, "a//b", "new\nline"])
async def test_bad_names_in_multipart_are_400(http, name):
    form = aiohttp.FormData(quote_fields=False)
    form.add_field("file", b"data", filename="ok.txt")
    form.add_field("path", name)
    async with http.post("/api/v1/files/upload", data=form) as resp:
        assert resp.status == 400, name
        assert (await error_of(resp))["code"] == "invalid_name"
    assert await _list(http) == []


@pytest.mark.parametrize("raw_path", ["%2e%2e/x", "a/%2E%2E/b", "a%00b", "x" * 10_000,
                                      "a%0d%0aSet-Cookie:%20x"])
async def test_bad_names_in_raw_put_are_4xx(node, http, raw_path):
    # encoded=True: send the path exactly as written (no client-side dot folding)
    url = URL(f"{node.url}/api/v1/files/content/{raw_path}", encoded=True)
    async with http.put(url, data=b"data") as resp:
        assert 400 <= resp.status < 500, raw_path
        if resp.content_type == "application/json":
            await error_of(resp)
    assert await _list(http) == []


async def test_unknown_ids_and_bad_parameters(http):
    for path in ["/api/v1/files/nope", "/api/v1/files/nope/download",
                 "/api/v1/files/nope/versions", "/api/v1/files/content/nope.txt",
                 "/api/v1/nothing-here"]:
        async with http.get(path) as resp:
            assert resp.status == 404, path
            await error_of(resp)
    async with http.delete("/api/v1/files/nope") as resp:
        assert resp.status == 404
    body = await upload(http, "p.txt", b"x")
    big = str(2**63)  # past a 64-bit version number (found by the API fuzzer)
    for params in [{"version": "abc"}, {"version": "0"}, {"version": "-1"}, {"version": big},
                   {"version": "613918369214483660800"}]:
        for path in [f"/api/v1/files/{body['file_id']}/download",
                     f"/api/v1/files/{body['file_id']}", "/api/v1/files/content/p.txt"]:
            async with http.get(path, params=params) as resp:
                assert resp.status == 400, (path, params)
                await error_of(resp)
        async with http.delete(f"/api/v1/files/{body['file_id']}", params=params) as resp:
            assert resp.status == 400, params
            await error_of(resp)
    for params in [{"limit": "0"}, {"limit": "100000"}, {"limit": "x"}, {"cursor": "!!!"}]:
        async with http.get("/api/v1/files", params=params) as resp:
            assert resp.status == 400, params
            await error_of(resp)
    # Beyond a 64-bit row id (found by the API fuzzer): a 400, not the driver's overflow.
    for before in [str(2**63), str(-(2**63) - 1), "111695346396337885151232"]:
        async with http.get("/api/v1/consistency/transitions",
                            params={"before": before}) as resp:
            assert resp.status == 400, before
            await error_of(resp)
    async with http.patch("/api/v1/files/upload") as resp:
        assert resp.status == 405
        await error_of(resp)


async def test_zero_byte_file(http):
    body = await upload(http, "empty", b"")
    assert body["size"] == 0 and body["chunks"] == 0
    async with http.get(f"/api/v1/files/{body['file_id']}/download") as resp:
        assert resp.status == 200 and await resp.read() == b""
    async with http.get(f"/api/v1/files/{body['file_id']}/download",
                        headers={"Range": "bytes=0-0"}) as resp:
        assert resp.status == 416


async def test_oversize_declared_body_is_413_and_stores_nothing(tmp_path):
    async with running_node(tmp_path / "d", max_upload_size=MIB) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:
        async with http.put("/api/v1/files/content/big.bin", data=os.urandom(2 * MIB)) as resp:
            assert resp.status == 413
            assert (await error_of(resp))["code"] == "payload_too_large"
        form = aiohttp.FormData()
        form.add_field("file", os.urandom(3 * MIB), filename="big.bin")
        async with http.post("/api/v1/files/upload", data=form) as resp:
            assert resp.status == 413
        assert await _list(http) == []
        assert stored_chunks(node) == {}
        assert (await node.repo.totals()).chunks == 0


async def test_oversize_streamed_body_is_413_and_leaves_no_file(tmp_path):
    async with running_node(tmp_path / "d", max_upload_size=2 * MIB) as node, \
            aiohttp.ClientSession(base_url=node.url) as http:

        async def body():
            for _ in range(8):
                yield os.urandom(MIB // 2)

        try:
            async with http.put("/api/v1/files/content/big.bin", data=body()) as resp:
                assert resp.status == 413
                assert (await error_of(resp))["code"] == "payload_too_large"
        except aiohttp.ClientOSError:
            pass  # the server may close while we still send: also a refusal
        assert await _list(http) == []
        await node.master.collector.run_once(grace=0)
        assert stored_chunks(node) == {}


async def test_client_disconnect_mid_upload_leaves_nothing(node, http):
    host, port = "127.0.0.1", node.port
    _reader, writer = await asyncio.open_connection(host, port)
    writer.write(
        b"PUT /api/v1/files/content/partial.bin HTTP/1.1\r\n"
        b"Host: x\r\nContent-Length: 10485760\r\n\r\n"
    )
    for _ in range(3):
        writer.write(os.urandom(MIB))
        await writer.drain()

    async def stored() -> bool:  # the master has written what it received so far
        return stored_chunks(node) != {}

    await eventually(stored, 10, "chunks of the partial upload on the workers")
    writer.close()
    await asyncio.sleep(0.5)
    assert await _list(http) == []
    assert stored_chunks(node) != {}  # orphans exist until the collector runs
    await node.master.collector.run_once(grace=0)
    assert stored_chunks(node) == {}
    assert (await node.repo.totals()).chunks == 0


async def test_truncated_multipart_leaves_nothing(node, http):
    boundary = "BOUNDARY"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; "
            f"filename=\"t.bin\"\r\nContent-Type: application/octet-stream\r\n\r\n").encode()
    _reader, writer = await asyncio.open_connection("127.0.0.1", node.port)
    writer.write(
        b"POST /api/v1/files/upload HTTP/1.1\r\nHost: x\r\n"
        + f"Content-Type: multipart/form-data; boundary={boundary}\r\n".encode()
        + b"Content-Length: 5000000\r\n\r\n" + head + os.urandom(2 * MIB)
    )
    await writer.drain()
    writer.close()
    await asyncio.sleep(0.5)
    assert await _list(http) == []


async def test_unicode_and_odd_but_valid_names(http):
    for name in ["ünïcödé/файл.txt", "emoji 😀.png", "spaces in name", "semi;colon,comma",
                 "percent%20literal"]:
        body = await put_raw(http, urllib.parse.quote(name), name.encode())
        assert body["path"] == name
        async with http.get(f"/api/v1/files/{body['file_id']}/download") as resp:
            assert await resp.read() == name.encode()
