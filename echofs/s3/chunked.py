"""``aws-chunked`` request bodies: the payload framed in chunks, each with
its own signature (``STREAMING-AWS4-HMAC-SHA256-PAYLOAD``), or unsigned with
a trailing checksum (``STREAMING-UNSIGNED-PAYLOAD-TRAILER``, what current
boto3 and aws-cli send by default), or both.

Frames::

    <hex size>[;chunk-signature=<sig>]\\r\\n<size bytes>\\r\\n ... 0[;chunk-signature=<sig>]\\r\\n
    [<trailer name>:<value>\\r\\n ...]\\r\\n

The payload is yielded as it arrives, a piece at a time (memory stays flat
however large a chunk claims to be); a chunk's signature is checked when its
last byte has arrived, and the trailers at the end. The caller commits
nothing until the generator has finished without raising, so a bad
signature or checksum anywhere stores nothing.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import StreamReader

from echofs.s3.checksums import HEADER_PREFIX, ExpectedChecksum, algorithm_of
from echofs.s3.errors import S3Error
from echofs.s3.sigv4 import EMPTY_SHA256, Scope

_PIECE = 256 * 1024
_MAX_LINE = 4096
_MAX_TRAILERS = 16


@dataclass(slots=True)
class ChunkSigning:
    """What checks chunk signatures: the request's signing key, scope, date
    and seed signature (``None`` key: single-user mode, not checked)."""

    key: bytes | None
    scope: Scope
    amz_date: str
    previous: str

    def check(self, kind: str, digest: str, signature: str | None) -> None:
        if signature is None:
            raise S3Error("IncompleteBody", "a chunk of a signed aws-chunked body has no "
                          "chunk-signature")
        if self.key is not None:
            text = (f"AWS4-HMAC-SHA256-{kind}\n{self.amz_date}\n{self.scope}\n"
                    f"{self.previous}\n" + (f"{EMPTY_SHA256}\n" if kind == "PAYLOAD" else "")
                    + digest)
            expected = hmac.new(self.key, text.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature):
                raise S3Error("SignatureDoesNotMatch", "a chunk signature does not match")
        self.previous = signature


@dataclass(slots=True)
class ChunkedBody:
    """How to read one ``aws-chunked`` body."""

    signing: ChunkSigning | None  # None: unsigned chunks
    trailer: bool
    # The checksum the x-amz-trailer header announced, to be found in the trailers.
    checksum: ExpectedChecksum | None = None
    decoded_length: int | None = None
    received: int = field(default=0)

    async def payload(self, stream: StreamReader) -> AsyncIterator[bytes]:
        while True:
            size, signature = _chunk_header(await _line(stream))
            digest = hashlib.sha256() if self.signing is not None else None
            left = size
            while left:
                piece = await stream.read(min(left, _PIECE))
                if not piece:
                    raise S3Error("IncompleteBody", "the body ended inside a chunk")
                left -= len(piece)
                if digest is not None:
                    digest.update(piece)
                self.received += len(piece)
                if self.checksum is not None:
                    self.checksum.update(piece)
                yield piece
            if self.signing is not None and digest is not None:
                self.signing.check("PAYLOAD", digest.hexdigest(), signature)
            if size == 0:
                break
            if await _line(stream) != b"":
                raise S3Error("IncompleteBody", "a chunk is longer than its declared size")
        await self._trailers(stream)
        if self.decoded_length is not None and self.received != self.decoded_length:
            raise S3Error("IncompleteBody", f"the body decoded to {self.received} bytes, "
                          f"x-amz-decoded-content-length says {self.decoded_length}")
        if self.checksum is not None:
            self.checksum.verify()

    async def _trailers(self, stream: StreamReader) -> None:
        lines: list[bytes] = []
        while (line := await _line(stream, eof_ok=True)) not in (b"", None):
            lines.append(line)
            if len(lines) > _MAX_TRAILERS:
                raise S3Error("InvalidRequest", "too many trailing headers")
        if not self.trailer:
            if lines:
                raise S3Error("InvalidRequest", "trailers were sent but not announced in "
                              "x-amz-trailer")
            return
        signature = None
        canonical = []
        for raw in lines:
            name, sep, value = raw.decode("utf-8", "replace").partition(":")
            name, value = name.strip().lower(), value.strip()
            if not sep:
                raise S3Error("InvalidRequest", "a trailing header has no ':'")
            if name == "x-amz-trailer-signature":
                signature = value
                continue
            canonical.append(f"{name}:{value}\n")
            if name.startswith(HEADER_PREFIX):
                algorithm = algorithm_of(name)
                if self.checksum is None or self.checksum.algorithm != algorithm:
                    raise S3Error("InvalidRequest", f"trailer {name} was not announced in "
                                  "x-amz-trailer")
                self.checksum.expected = value
        if self.signing is not None:
            digest = hashlib.sha256("".join(canonical).encode()).hexdigest()
            self.signing.check("TRAILER", digest, signature)


def _chunk_header(line: bytes | None) -> tuple[int, str | None]:
    if line is None:
        raise S3Error("IncompleteBody", "the body ended before its last chunk")
    text = line.decode("ascii", "replace")
    size_text, _, extension = text.partition(";")
    try:
        size = int(size_text.strip(), 16)
    except ValueError:
        raise S3Error("InvalidRequest", "an aws-chunked chunk header is malformed") from None
    if size < 0:
        raise S3Error("InvalidRequest", "an aws-chunked chunk size is negative")
    signature = None
    if extension:
        name, _, value = extension.partition("=")
        if name.strip() == "chunk-signature":
            signature = value.strip()
    return size, signature


async def _line(stream: StreamReader, *, eof_ok: bool = False) -> bytes | None:
    """One CRLF-terminated line without its CRLF; ``None`` at a clean end."""
    try:
        data = await stream.readuntil(b"\n")
    except ValueError:  # longer than the reader's limit
        raise S3Error("InvalidRequest", "an aws-chunked header line is too long") from None
    if not data:
        if eof_ok:
            return None
        raise S3Error("IncompleteBody", "the body ended inside a chunk header")
    if not data.endswith(b"\r\n") or len(data) > _MAX_LINE:
        raise S3Error("IncompleteBody", "an aws-chunked header line is malformed or cut short")
    return data[:-2]
