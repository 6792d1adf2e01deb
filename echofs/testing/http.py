"""HTTP helpers for tests and benchmarks: upload, download, streamed patterns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import blake3


async def upload(http: aiohttp.ClientSession, name: str, data: bytes, *,
                 expect: int = 201, **fields: str) -> dict[str, Any]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type="application/octet-stream")
    for key, value in fields.items():
        form.add_field(key, value)
    async with http.post("/api/v1/files/upload", data=form) as resp:
        body = await resp.json()
        assert resp.status == expect, body
        return body


async def put_raw(http: aiohttp.ClientSession, path: str, data: Any, *,
                  expect: int = 201) -> dict[str, Any]:
    async with http.put(f"/api/v1/files/content/{path}", data=data) as resp:
        body = await resp.json()
        assert resp.status == expect, body
        return body


async def download(http: aiohttp.ClientSession, file_id: str, **params: Any) -> bytes:
    async with http.get(f"/api/v1/files/{file_id}/download", params=params) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.read()


async def download_digest(http: aiohttp.ClientSession, file_id: str) -> tuple[int, str]:
    """Stream a download and return (size, blake3) without holding it in memory."""
    hasher, size = blake3.blake3(), 0
    async with http.get(f"/api/v1/files/{file_id}/download") as resp:
        assert resp.status == 200, await resp.text()
        async for piece in resp.content.iter_chunked(1 << 20):
            hasher.update(piece)
            size += len(piece)
    return size, hasher.hexdigest()


async def pattern_stream(total: int, piece: int = 1 << 20, seed: int = 0) -> AsyncIterator[bytes]:
    """Deterministic, incompressible bytes generated on the fly (no big buffers)."""
    sent, counter = 0, 0
    while sent < total:
        n = min(piece, total - sent)
        block = blake3.blake3(f"{seed}:{counter}".encode()).digest(length=n)
        counter += 1
        sent += n
        yield block


def pattern_digest(total: int, piece: int = 1 << 20, seed: int = 0) -> str:
    hasher, sent, counter = blake3.blake3(), 0, 0
    while sent < total:
        n = min(piece, total - sent)
        hasher.update(blake3.blake3(f"{seed}:{counter}".encode()).digest(length=n))
        counter += 1
        sent += n
    return hasher.hexdigest()


async def error_of(resp: aiohttp.ClientResponse) -> dict[str, str]:
    body = await resp.json()
    # Ours, and the original EchoFS's envelope beside it.
    assert set(body) == {"error", "success", "message"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["success"] is False and body["message"] == body["error"]["message"], body
    return body["error"]
