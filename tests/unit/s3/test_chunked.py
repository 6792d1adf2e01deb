"""``aws-chunked`` bodies: AWS's documented signed-chunk example (64 KiB +
1 KiB of 'a'), unsigned bodies with trailing checksums, and every way a body
can be wrong."""

from __future__ import annotations

import base64
import datetime
import zlib

import pytest
from multidict import CIMultiDict

from echofs.s3.checksums import ExpectedChecksum
from echofs.s3.chunked import ChunkedBody, ChunkSigning
from echofs.s3.errors import S3Error
from echofs.s3.sigv4 import parse_request

# AWS's example credentials and time (as in test_sigv4).
KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AT = datetime.datetime(2013, 5, 24, 0, 0, 10, tzinfo=datetime.UTC)

SEED = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
CHUNK_SIGNATURES = ("ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
                    "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
                    "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9")


class Stream:
    """What the decoder reads of aiohttp's StreamReader, over bytes."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    async def read(self, n: int) -> bytes:
        piece = self.data[self.at:self.at + n]
        self.at += len(piece)
        return piece

    async def readuntil(self, separator: bytes) -> bytes:
        end = self.data.find(separator, self.at)
        end = len(self.data) if end < 0 else end + len(separator)
        piece = self.data[self.at:end]
        self.at = end
        return piece


def _example_signing() -> ChunkSigning:
    headers = CIMultiDict({
        "Host": "s3.amazonaws.com", "x-amz-date": "20130524T000000Z",
        "x-amz-storage-class": "REDUCED_REDUNDANCY", "Content-Encoding": "aws-chunked",
        "x-amz-decoded-content-length": "66560", "Content-Length": "66824",
        "x-amz-content-sha256": "STREAMING-AWS4-HMAC-SHA256-PAYLOAD",
        "Authorization": f"AWS4-HMAC-SHA256 Credential={KEY}/20130524/us-east-1/s3/"
                         "aws4_request,SignedHeaders=content-encoding;content-length;host;"
                         "x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;"
                         f"x-amz-storage-class,Signature={SEED}"})
    signed = parse_request("PUT", "/examplebucket/chunkObject.txt", "", headers, AT)
    key = signed.verify(SECRET)
    return ChunkSigning(key, signed.scope, signed.amz_date, signed.signature)


def _example_body(signatures: tuple[str, ...] = CHUNK_SIGNATURES) -> bytes:
    sizes = (65536, 1024, 0)
    return b"".join(f"{size:x};chunk-signature={sig}\r\n".encode() + b"a" * size + b"\r\n"
                    for size, sig in zip(sizes, signatures, strict=True))


async def _decode(body: ChunkedBody, data: bytes) -> bytes:
    return b"".join([piece async for piece in body.payload(Stream(data))])  # type: ignore[arg-type]


async def test_aws_signed_chunk_example_decodes():
    data = _example_body()
    assert len(data) == 66824
    decoded = await _decode(ChunkedBody(_example_signing(), trailer=False,
                                        decoded_length=66560), data)
    assert decoded == b"a" * 66560


async def test_a_bad_chunk_signature_is_refused():
    bad = (CHUNK_SIGNATURES[0], "0" * 64, CHUNK_SIGNATURES[2])
    with pytest.raises(S3Error) as refused:
        await _decode(ChunkedBody(_example_signing(), trailer=False), _example_body(bad))
    assert refused.value.code == "SignatureDoesNotMatch"


def _unsigned_with_trailer(payload: bytes, trailer: str) -> bytes:
    half = len(payload) // 2
    return (f"{half:x}\r\n".encode() + payload[:half] + b"\r\n"
            + f"{len(payload) - half:x}\r\n".encode() + payload[half:] + b"\r\n"
            + b"0\r\n" + trailer.encode() + b"\r\n\r\n")


def _crc32(data: bytes) -> str:
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()


async def test_unsigned_trailer_checksum_verified():
    payload = b"hello trailing checksum" * 100
    body = ChunkedBody(None, trailer=True, checksum=ExpectedChecksum("crc32"),
                       decoded_length=len(payload))
    data = _unsigned_with_trailer(payload, f"x-amz-checksum-crc32:{_crc32(payload)}")
    assert await _decode(body, data) == payload
    wrong = ChunkedBody(None, trailer=True, checksum=ExpectedChecksum("crc32"))
    with pytest.raises(S3Error) as bad:
        await _decode(wrong, _unsigned_with_trailer(payload, "x-amz-checksum-crc32:AAAAAA=="))
    assert bad.value.code == "BadDigest"
    missing = ChunkedBody(None, trailer=True, checksum=ExpectedChecksum("crc32"))
    with pytest.raises(S3Error):
        await _decode(missing, _unsigned_with_trailer(payload, "")[:-2])


@pytest.mark.parametrize("data,why", [
    (b"5\r\nabc", "cut inside a chunk"),
    (b"zz\r\nabc\r\n0\r\n\r\n", "size not hex"),
    (b"3\r\nabcdef\r\n0\r\n\r\n", "chunk longer than declared"),
    (b"3\r\nabc\r\n", "no last chunk"),
])
async def test_malformed_bodies_are_refused(data, why):
    with pytest.raises(S3Error):
        await _decode(ChunkedBody(None, trailer=False), data)


async def test_decoded_length_must_match():
    with pytest.raises(S3Error) as short:
        await _decode(ChunkedBody(None, trailer=False, decoded_length=10),
                      b"3\r\nabc\r\n0\r\n\r\n")
    assert short.value.code == "IncompleteBody"
