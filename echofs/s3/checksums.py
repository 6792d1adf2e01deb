"""The ``x-amz-checksum-*`` algorithms a client may send with a body.

Current boto3 and aws-cli send a CRC32 of every upload by default (in a
trailer of an ``aws-chunked`` body, or as a header); others may choose
CRC32C, SHA-1 or SHA-256. Each is computed while the body streams and
compared before the upload commits: a mismatch stores nothing (BadDigest).
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from typing import Protocol

import google_crc32c

from echofs.s3.errors import S3Error


class Checksum(Protocol):
    def update(self, data: bytes | memoryview) -> None: ...

    def digest(self) -> bytes: ...


class _Crc32:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes | memoryview) -> None:
        self._value = zlib.crc32(data, self._value)

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


class _Crc32c:
    def __init__(self) -> None:
        self._value = 0

    def update(self, data: bytes | memoryview) -> None:
        self._value = google_crc32c.extend(self._value, bytes(data))

    def digest(self) -> bytes:
        return self._value.to_bytes(4, "big")


ALGORITHMS = {
    "crc32": _Crc32,
    "crc32c": _Crc32c,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
}
HEADER_PREFIX = "x-amz-checksum-"


def algorithm_of(header_name: str) -> str:
    """``x-amz-checksum-crc32`` → ``crc32``; refuses one we do not compute."""
    name = header_name.lower().removeprefix(HEADER_PREFIX)
    if name not in ALGORITHMS:
        raise S3Error("InvalidRequest", f"checksum algorithm {name!r} is not supported; "
                      f"use one of {', '.join(sorted(ALGORITHMS))}")
    return name


class ExpectedChecksum:
    """A checksum being computed over a body, with the value the client
    gave (now, in a header, or later, in a trailer)."""

    def __init__(self, algorithm: str, expected: str | None = None) -> None:
        self.algorithm = algorithm
        self.expected = expected
        self._hash: Checksum = ALGORITHMS[algorithm]()

    def update(self, data: bytes | memoryview) -> None:
        self._hash.update(data)

    def value(self) -> str:
        return base64.b64encode(self._hash.digest()).decode()

    def verify(self) -> None:
        if self.expected is None:
            raise S3Error("InvalidRequest", f"the body's x-amz-checksum-{self.algorithm} "
                          "trailer is missing")
        if self.expected != self.value():
            raise S3Error("BadDigest", f"The {self.algorithm.upper()} you specified did not "
                          "match the calculated checksum.")
