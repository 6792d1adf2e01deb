"""The files API against an in-process node: round trips, dedup, versions,
ranges, conditional requests, deletes."""

from __future__ import annotations

import os
import urllib.parse

import aiohttp
import blake3
import pytest

from echofs.testing.http import (
    download,
    download_digest,
    error_of,
    pattern_digest,
    pattern_stream,
    put_raw,
    upload,
)
from echofs.testing.node import stored_bytes, stored_chunks

MIB = 1024 * 1024


@pytest.mark.parametrize("size", [0, 1, MIB - 1, MIB, MIB + 1, 10 * MIB])
async def test_multipart_round_trip_is_byte_exact(http, size):
    data = os.urandom(size)
    body = await upload(http, "blob.bin", data)
    assert body["size"] == size
    assert body["chunks"] == -(-size // MIB)
    assert body["blake3"] == blake3.blake3(data).hexdigest()
    assert body["version"] == 1 and body["mode"] == "strong"
    # A strong write is acknowledged at its quorum (2 of 3); the third copy
    # counts only if it lands within the short grace after that, which a
    # loaded machine may not give a 10 MiB upload.
    assert body["replicas_acked"] in ((2, 3) if size else (0,))
    assert await download(http, body["file_id"]) == data


@pytest.mark.parametrize("size", [0, 1, MIB - 1, MIB + 1])
async def test_raw_put_round_trip_is_byte_exact(http, size):
    data = os.urandom(size)
    body = await put_raw(http, "dir/raw.bin", data)
    assert body["path"] == "dir/raw.bin"
    assert await download(http, body["file_id"]) == data
    async with http.get("/api/v1/files/content/dir/raw.bin") as resp:
        assert resp.status == 200
        assert await resp.read() == data


@pytest.mark.slow
async def test_300_mib_streamed_round_trip(http):
    size = 300 * MIB
    body = await put_raw(http, "big/300.bin", pattern_stream(size))
    assert body["size"] == size and body["chunks"] == 300
    assert body["blake3"] == pattern_digest(size)
    assert await download_digest(http, body["file_id"]) == (size, pattern_digest(size))


async def test_same_content_is_stored_once(http, node):
    data = os.urandom(3 * MIB + 5)
    first = await upload(http, "one.bin", data)
    before = stored_bytes(node)
    second = await upload(http, "two.bin", data)
    assert second["chunks_deduplicated"] == 4
    assert second["bytes_deduplicated"] == len(data)
    assert first["chunks_deduplicated"] == 0
    assert stored_bytes(node) == before  # no new chunk bytes anywhere
    assert await download(http, second["file_id"]) == data


async def test_compressible_data_is_stored_compressed(http, node):
    data = b"echofs " * (MIB // 4)
    body = await upload(http, "text.txt", data)
    assert stored_bytes(node) < len(data)  # three copies, still smaller than one raw
    async with http.get(f"/api/v1/files/{body['file_id']}") as resp:
        meta = await resp.json()
    assert all(c["compressed"] for c in meta["chunk_list"])
    assert await download(http, body["file_id"]) == data


async def test_every_chunk_has_three_replicas_on_distinct_workers(http, node):
    body = await upload(http, "r.bin", os.urandom(4 * MIB))
    async with http.get(f"/api/v1/files/{body['file_id']}") as resp:
        meta = await resp.json()
    assert meta["size"] == 4 * MIB and meta["version"] == 1
    files = stored_chunks(node)
    for chunk in meta["chunk_list"]:
        assert len(set(chunk["replicas"])) == 3
        assert len(files[chunk["chunk_id"]]) == 3


async def test_new_upload_to_same_name_creates_versions_and_prunes(http):
    bodies = [await upload(http, "v.txt", f"content {i}".encode()) for i in range(7)]
    file_id = bodies[0]["file_id"]
    assert {b["file_id"] for b in bodies} == {file_id}
    assert [b["version"] for b in bodies] == list(range(1, 8))
    async with http.get(f"/api/v1/files/{file_id}/versions") as resp:
        listing = await resp.json()
    assert [v["version"] for v in listing["versions"]] == [7, 6, 5, 4, 3]
    assert listing["versions"][0]["current"] is True
    assert await download(http, file_id) == b"content 6"
    assert await download(http, file_id, version=4) == b"content 3"
    async with http.get(f"/api/v1/files/{file_id}/download", params={"version": 2}) as resp:
        assert resp.status == 404
        assert (await error_of(resp))["code"] == "not_found"


async def test_listing_filters_by_prefix_and_paginates(http):
    for name in ["a/1", "a/2", "a/3", "b/1", "A/upper"]:
        await put_raw(http, name, b"x")
    async with http.get("/api/v1/files", params={"prefix": "a/"}) as resp:
        paths = [f["path"] for f in (await resp.json())["files"]]
    assert paths == ["a/1", "a/2", "a/3"]  # case-sensitive
    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        async with http.get("/api/v1/files", params=params) as resp:
            page = await resp.json()
        seen += [f["path"] for f in page["files"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(["a/1", "a/2", "a/3", "b/1", "A/upper"])
    assert len(seen) == 5


async def test_range_requests(http):
    data = os.urandom(3 * MIB + 100)
    file_id = (await upload(http, "r.bin", data))["file_id"]
    url = f"/api/v1/files/{file_id}/download"
    cases = {
        "bytes=0-9": data[:10],
        f"bytes={MIB - 5}-{MIB + 5}": data[MIB - 5 : MIB + 6],
        "bytes=-100": data[-100:],
        f"bytes={2 * MIB}-": data[2 * MIB :],
    }
    for header, expected in cases.items():
        async with http.get(url, headers={"Range": header}) as resp:
            assert resp.status == 206, header
            assert await resp.read() == expected, header
            assert resp.headers["Content-Length"] == str(len(expected))
            assert resp.headers["Content-Range"].endswith(f"/{len(data)}")
    async with http.get(url, headers={"Range": f"bytes={len(data)}-"}) as resp:
        assert resp.status == 416
        assert resp.headers["Content-Range"] == f"bytes */{len(data)}"
        assert (await error_of(resp))["code"] == "range_not_satisfiable"
    async with http.get(url, headers={"Range": "bytes=oops"}) as resp:
        assert resp.status == 200 and await resp.read() == data  # ignored, per RFC 9110


async def test_etag_and_if_none_match(http):
    body = await upload(http, "e.txt", b"etag me")
    url = f"/api/v1/files/{body['file_id']}/download"
    async with http.get(url) as resp:
        etag = resp.headers["ETag"]
        assert etag == body["etag"]
        assert resp.headers["Accept-Ranges"] == "bytes"
    async with http.get(url, headers={"If-None-Match": etag}) as resp:
        assert resp.status == 304
    async with http.get(url, headers={"If-None-Match": '"other"'}) as resp:
        assert resp.status == 200


async def test_unicode_name_round_trips_with_safe_content_disposition(http):
    # Quotes and non-ASCII through the URL, where they are unambiguous.
    name = 'résumé "final".txt'
    body = await put_raw(http, urllib.parse.quote(name), b"bonjour")
    assert body["path"] == name
    async with http.get(f"/api/v1/files/{body['file_id']}/download") as resp:
        disposition = resp.headers["Content-Disposition"]
        assert await resp.read() == b"bonjour"
    assert "\r" not in disposition and "\n" not in disposition
    assert 'filename="r_sum_ _final_.txt"' in disposition
    assert "filename*=UTF-8''" + urllib.parse.quote(name, safe="") in disposition


async def test_unicode_multipart_filename_as_browsers_send_it(http):
    form = aiohttp.FormData(quote_fields=False)  # raw UTF-8, like curl and browsers
    form.add_field("file", b"hello", filename="日本語 ファイル.txt")
    async with http.post("/api/v1/files/upload", data=form) as resp:
        body = await resp.json()
        assert resp.status == 201, body
    assert body["path"] == "日本語 ファイル.txt"
    assert await download(http, body["file_id"]) == b"hello"


async def test_delete_then_collect_removes_only_unreferenced_chunks(http, node):
    shared = os.urandom(MIB)
    keep = await upload(http, "keep.bin", shared + b"tail-keep")
    doomed = await upload(http, "doomed.bin", shared + os.urandom(MIB))
    assert len(stored_chunks(node)) == 3  # shared chunk stored once
    async with http.delete(f"/api/v1/files/{doomed['file_id']}") as resp:
        assert resp.status == 200
        assert (await resp.json())["deleted_versions"] == 1
    async with http.get(f"/api/v1/files/{doomed['file_id']}") as resp:
        assert resp.status == 404
    report = await node.master.collector.run_once(grace=0)
    assert report.removed == 1 and report.copies_deleted == 3
    assert len(stored_chunks(node)) == 2
    assert await download(http, keep["file_id"]) == shared + b"tail-keep"


async def test_delete_one_version(http):
    await upload(http, "dv.txt", b"one")
    body = await upload(http, "dv.txt", b"two")
    async with http.delete(f"/api/v1/files/{body['file_id']}", params={"version": 2}) as resp:
        assert resp.status == 200
    assert await download(http, body["file_id"]) == b"one"


async def test_health_and_workers_health(http):
    async with http.get("/api/v1/health") as resp:
        health = await resp.json()
    assert resp.status == 200 and health["status"] == "ok"
    assert health["workers"] == {"alive": 3, "total": 3, "full": []}
    async with http.get("/api/v1/workers/health") as resp:
        workers = (await resp.json())["workers"]
    assert [w["id"] for w in workers] == ["w1", "w2", "w3"]
    for worker in workers:
        assert worker["state"] == "alive"
        assert worker["space"] == "ok"
        assert worker["capacity_bytes"] > 0
        assert worker["chunk_count"] == 0
