"""A PUT's body as the bytes of the object, checked as it streams.

Three shapes: a plain body (its SHA-256 checked when the signature covers
it), an ``aws-chunked`` body (see ``chunked``), and either one with a
checksum (``x-amz-checksum-*`` header or trailer, ``Content-MD5``). Every
check that can only be made at the end is made before the iterator ends, so
the caller, which commits only after the last piece, stores nothing that
failed one. The MD5 that becomes the ETag is computed on the way.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import AsyncIterator

from aiohttp import web

from echofs.s3.checksums import HEADER_PREFIX, ExpectedChecksum, algorithm_of
from echofs.s3.chunked import ChunkedBody, ChunkSigning
from echofs.s3.credentials import Caller
from echofs.s3.errors import S3Error
from echofs.s3.sigv4 import STREAMING, STREAMING_UNSIGNED_TRAILER, UNSIGNED_PAYLOAD

_PIECE = 256 * 1024


class ObjectBody:
    """Iterate :meth:`pieces`; then ``md5`` and ``size`` describe what arrived."""

    def __init__(self, request: web.Request, caller: Caller, max_size: int) -> None:
        self.request = request
        self.caller = caller
        self.max_size = max_size
        self.size = 0
        self._md5 = hashlib.md5()
        self.checksum = _header_checksum(request)
        self.content_md5 = _content_md5(request)
        self._chunked = self._chunked_body()
        if self._chunked is None and request.content_length is None \
                and request.headers.get("Transfer-Encoding") is None:
            raise S3Error("MissingContentLength")

    @property
    def md5(self) -> str:
        return self._md5.hexdigest()

    def _chunked_body(self) -> ChunkedBody | None:
        payload = self.caller.signed.payload
        encoding = self.request.headers.get("Content-Encoding", "")
        if payload not in STREAMING:
            if "aws-chunked" in encoding.lower():
                raise S3Error("InvalidArgument", "an aws-chunked body needs a STREAMING-* "
                              "x-amz-content-sha256")
            return None
        signing = None
        if payload != STREAMING_UNSIGNED_TRAILER:
            signed = self.caller.signed
            assert signed.scope is not None  # STREAMING-* is SigV4's
            signing = ChunkSigning(self.caller.signing_key, signed.scope, signed.amz_date,
                                   signed.signature)
        trailer = self.request.headers.get("X-Amz-Trailer")
        checksum = None
        if trailer:
            if self.checksum is not None:
                raise S3Error("InvalidRequest", "a checksum was sent both as a header and as "
                              "a trailer")
            checksum = ExpectedChecksum(algorithm_of(trailer.strip()))
        elif payload.endswith("TRAILER"):
            raise S3Error("InvalidRequest", "a STREAMING-*-TRAILER body needs x-amz-trailer")
        decoded = self.request.headers.get("X-Amz-Decoded-Content-Length")
        try:
            decoded_length = int(decoded) if decoded is not None else None
        except ValueError:
            raise S3Error("InvalidArgument", "x-amz-decoded-content-length must be a "
                          "number") from None
        if decoded_length is not None and decoded_length > self.max_size:
            raise S3Error("EntityTooLarge")
        return ChunkedBody(signing, bool(trailer), checksum, decoded_length)

    async def pieces(self) -> AsyncIterator[bytes]:
        if self.request.content_length is not None and self._chunked is None \
                and self.request.content_length > self.max_size:
            raise S3Error("EntityTooLarge")
        source = (self._chunked.payload(self.request.content) if self._chunked is not None
                  else self.request.content.iter_chunked(_PIECE))
        signed_hash = self.caller.signed.payload
        sha256 = (hashlib.sha256() if signed_hash not in STREAMING
                  and signed_hash != UNSIGNED_PAYLOAD else None)
        async for piece in source:
            self.size += len(piece)
            if self.size > self.max_size:
                raise S3Error("EntityTooLarge")
            self._md5.update(piece)
            if sha256 is not None:
                sha256.update(piece)
            if self.checksum is not None:
                self.checksum.update(piece)
            yield piece
        if sha256 is not None and sha256.hexdigest() != signed_hash:
            raise S3Error("XAmzContentSHA256Mismatch")
        if self.content_md5 is not None and self.content_md5 != self._md5.digest():
            raise S3Error("BadDigest", "The Content-MD5 you specified did not match what we "
                          "received.")
        if self.checksum is not None:
            self.checksum.verify()

    def checksum_header(self) -> dict[str, str]:
        """The checksum to echo back (as S3 does), if one was verified."""
        verified = self.checksum or (self._chunked.checksum if self._chunked else None)
        if verified is None:
            return {}
        return {f"{HEADER_PREFIX}{verified.algorithm}": verified.value()}


def _header_checksum(request: web.Request) -> ExpectedChecksum | None:
    found = [(name, value) for name, value in request.headers.items()
             if name.lower().startswith(HEADER_PREFIX) and name.lower() != "x-amz-checksum-type"]
    if len(found) > 1:
        raise S3Error("InvalidRequest", "send at most one x-amz-checksum-* header")
    if not found:
        return None
    name, value = found[0]
    return ExpectedChecksum(algorithm_of(name), value.strip())


def _content_md5(request: web.Request) -> bytes | None:
    raw = request.headers.get("Content-MD5")
    if raw is None:
        return None
    try:
        digest = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise S3Error("InvalidDigest") from None
    if len(digest) != 16:
        raise S3Error("InvalidDigest")
    return digest
