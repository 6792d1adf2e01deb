"""The parts of S3 multipart that need no store: the Complete request and its
checks, the md5-of-md5s ETag, copy-source ranges, the listing documents,
and a long complete kept alive with whitespace (its error in the 200's body)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from defusedxml import ElementTree

from echofs.core.ranges import ByteRange
from echofs.core.upload_sessions import PartRecord
from echofs.metadata.s3_uploads import S3Upload
from echofs.s3 import multipart
from echofs.s3 import multipart_xml as mxml
from echofs.s3.errors import S3Error
from echofs.s3.xml import Encoder
from echofs.serving.middleware import FACTS, RequestFacts

MIB = 1024 * 1024
NS = "{http://s3.amazonaws.com/doc/2006-03-01/}"


def _part(number: int, body: bytes, size: int | None = None) -> PartRecord:
    return PartRecord(number, len(body) if size is None else size, "b" * 64, None,
                      hashlib.md5(body).hexdigest(), 1, 1, 1_700_000_000.0)


def _complete_xml(*parts: tuple[int, str]) -> bytes:
    items = "".join(f"<Part><PartNumber>{n}</PartNumber><ETag>{e}</ETag></Part>"
                    for n, e in parts)
    return f"<CompleteMultipartUpload>{items}</CompleteMultipartUpload>".encode()


def test_parse_complete_reads_numbers_and_unquoted_etags():
    parsed = mxml.parse_complete(_complete_xml((1, '"abc"'), (3, "def")))
    assert parsed == [mxml.CompletedPart(1, "abc"), mxml.CompletedPart(3, "def")]
    for bad in (b"<CompleteMultipartUpload/>", b"<Other/>", b"not xml",
                _complete_xml((1, "")).replace(b"<ETag></ETag>", b"")):
        with pytest.raises(S3Error) as refused:
            mxml.parse_complete(bad)
        assert refused.value.code == "MalformedXML"
    with pytest.raises(S3Error) as refused:
        mxml.parse_complete(_complete_xml((0, "x")))
    assert refused.value.code == "InvalidArgument"


def test_the_multipart_etag_is_the_md5_of_the_part_md5s():
    bodies = [b"a" * 10, b"b" * 20, b"c"]
    parts = [_part(n, b) for n, b in enumerate(bodies, 1)]
    expected = hashlib.md5(b"".join(hashlib.md5(b).digest() for b in bodies)).hexdigest()
    assert multipart._multipart_etag(parts) == f'"{expected}-3"'


def test_chosen_parts_are_checked_as_s3_checks_them():
    big, small = _part(1, b"x", size=multipart.MIN_PART_SIZE), _part(2, b"y", size=10)
    held = {1: big, 2: small}
    assert multipart._chosen([mxml.CompletedPart(1, big.md5 or ""),
                              mxml.CompletedPart(2, small.md5 or "")], held) == [big, small]
    # ETags compare without regard to case (some clients upper-case them).
    assert multipart._chosen([mxml.CompletedPart(2, (small.md5 or "").upper())],
                             held) == [small]
    cases = [([mxml.CompletedPart(2, small.md5 or ""), mxml.CompletedPart(1, big.md5 or "")],
              "EntityTooSmall"),
             ([mxml.CompletedPart(1, "0" * 32)], "InvalidPart"),
             ([mxml.CompletedPart(7, big.md5 or "")], "InvalidPart")]
    for named, code in cases:
        with pytest.raises(S3Error) as refused:
            multipart._chosen(named, held)
        assert refused.value.code == code


def test_copy_source_ranges():
    assert multipart._copy_range(None, 10) is None
    assert multipart._copy_range("bytes=0-9", 10) == ByteRange(0, 9)
    assert multipart._copy_range("bytes=3-3", 10) == ByteRange(3, 3)
    for raw, code in (("bytes=0-10", "InvalidRange"), ("bytes=5-4", "InvalidRange"),
                      ("bytes=5-", "InvalidArgument"), ("bytes=-5", "InvalidArgument"),
                      ("0-4", "InvalidArgument")):
        with pytest.raises(S3Error) as refused:
            multipart._copy_range(raw, 10)
        assert refused.value.code == code


def test_parts_document_pages():
    parts = [_part(n, bytes([n])) for n in (2, 5)]
    body = mxml.parts_document(mxml.PartsPage("b", "k", "u", "me", 1, 2, parts, True))
    tree = ElementTree.fromstring(body)
    assert tree.findtext(f"{NS}NextPartNumberMarker") == "5"
    assert tree.findtext(f"{NS}IsTruncated") == "true"
    assert [p.findtext(f"{NS}ETag") for p in tree.findall(f"{NS}Part")] == \
        [f'"{p.md5}"' for p in parts]


def test_uploads_document_markers_and_url_encoding():
    uploads = [S3Upload("u1", "b", "a b/1", initiated=1.0), S3Upload("u2", "b", "c", initiated=2.0)]
    page = mxml.UploadsPage("b", "me", "", "", "", 2, uploads, True, Encoder(True))
    tree = ElementTree.fromstring(mxml.uploads_document(page))
    assert [u.findtext(f"{NS}Key") for u in tree.findall(f"{NS}Upload")] == ["a%20b/1", "c"]
    assert tree.findtext(f"{NS}NextKeyMarker") == "c"
    assert tree.findtext(f"{NS}NextUploadIdMarker") == "u2"
    assert tree.findtext(f"{NS}EncodingType") == "url"
    last = mxml.UploadsPage("b", "me", "", "", "", 2, uploads, False, Encoder(False))
    assert ElementTree.fromstring(mxml.uploads_document(last)).find(f"{NS}NextKeyMarker") is None


async def _serve(work_factory) -> TestClient:  # type: ignore[no-untyped-def]
    async def handler(request: web.Request) -> web.StreamResponse:
        request[FACTS] = RequestFacts("req-1")
        return await multipart._kept_alive(request, work_factory())

    app = web.Application()
    app.router.add_post("/", handler)
    client = TestClient(TestServer(app))
    await client.start_server()
    return client


async def test_a_quick_complete_is_a_plain_answer(monkeypatch):
    async def work() -> bytes:
        return b"<doc/>"

    client = await _serve(work)
    try:
        answer = await client.post("/")
        assert answer.status == 200 and await answer.read() == b"<doc/>"
    finally:
        await client.close()


async def test_a_long_complete_is_kept_alive_and_its_error_is_in_the_body(monkeypatch):
    monkeypatch.setattr(multipart, "KEEPALIVE_AFTER", 0.05)
    monkeypatch.setattr(multipart, "KEEPALIVE_EVERY", 0.05)

    async def slow_ok() -> bytes:
        await asyncio.sleep(0.3)
        return mxml.complete_result("http://h/b/k", "b", "k", '"e-1"')

    async def slow_error() -> bytes:
        await asyncio.sleep(0.3)
        raise S3Error("InvalidPart")

    for work, root in ((slow_ok, "CompleteMultipartUploadResult"), (slow_error, "Error")):
        client = await _serve(work)
        try:
            answer = await client.post("/")
            body = await answer.read()
            assert answer.status == 200
            assert answer.headers["x-amz-request-id"] == "req-1"
            assert body.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n ')
            tree = ElementTree.fromstring(body)  # one well-formed document
            assert tree.tag.rpartition("}")[2] == root
        finally:
            await client.close()
