"""Chunk frames as objects in S3 (or any S3-compatible endpoint), via aioboto3.

Layout: ``s3://BUCKET/PREFIX/ab/cd/<chunk id>`` — the local store's fan-out,
so a listing of the prefix comes back in chunk-id order. One worker owns one
prefix (``--store s3://bucket/w1``; ``s3://bucket`` alone means the worker's
id as prefix): its counters and "was it there?" answers assume nobody else
writes there.

What the contract asks of ``put`` S3 gives by itself: an object is durable
once the PUT returns, and readers see the whole old or the whole new object.
Frames go up in one PUT (a chunk is at most a few MiB) and come down
streamed in 1 MiB pieces, joined once at the end.

Accounting: chunk count and bytes come from listing the prefix at ``open``,
then are tracked: a conditional PUT (``If-None-Match: *``) tells whether an id
was new, a HEAD before DELETE whether it was there, and a lock per id (striped)
keeps concurrent calls on one id exact. S3 has no capacity, so
``capacity_bytes`` and ``free_bytes`` are 0, which means "unknown".

Errors: botocore retries throttling, 5xx and connection errors itself, with
backoff (standard mode, ``max_attempts`` tries in all); what still fails leaves as
:class:`~echofs.core.errors.StoreUnavailable` — retryable, the master counts it
against the worker and reads or writes elsewhere. A missing object is
:class:`~echofs.core.errors.ChunkMissing`. A missing bucket, denied access,
bad or missing credentials are
:class:`~echofs.core.errors.StoreMisconfigured`: retrying cannot help, and
``open`` refuses to start the worker, saying which.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import aioboto3
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ParamValidationError,
    PartialCredentialsError,
)

from echofs.core.chunk_codec import is_chunk_id
from echofs.core.errors import (
    ChunkMissing,
    EchoFSError,
    StoreMisconfigured,
    StoreUnavailable,
)
from echofs.core.worker_status import StoreUsage
from echofs.worker.stores.base import ChunkStore

DEFAULT_REGION = "us-east-1"
# Pieces a GET body is read in.
_PIECE = 1024 * 1024
_LOCK_STRIPES = 64
# Concurrent requests one store may have open (the worker's in-flight chunks).
_CONNECTIONS = 32

_MISSING_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# Worth another try later: the service is busy or failing, not refusing.
_RETRYABLE_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "TooManyRequestsException", "RequestLimitExceeded", "RequestTimeout",
    "RequestTimeoutException", "PriorRequestNotComplete", "InternalError",
    "ServiceUnavailable",
})
_EXISTS_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict"})
_CONFIGURATION_ERRORS = (NoCredentialsError, PartialCredentialsError, NoRegionError,
                         ParamValidationError)


def error_code(exc: ClientError) -> tuple[str, int]:
    """(S3 error code, HTTP status) of a failed call."""
    error = exc.response.get("Error", {})
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return str(error.get("Code", "")), int(status)


def store_error(exc: BaseException, what: str) -> EchoFSError:
    """Our error for a failed S3 call: unavailable (retry later, or use another
    replica) or misconfigured (no bucket, access denied, bad credentials, a
    request this endpoint will never accept: retrying cannot help)."""
    if isinstance(exc, EchoFSError):
        return exc
    if isinstance(exc, _CONFIGURATION_ERRORS):
        return StoreMisconfigured(f"{what}: {exc}")
    if isinstance(exc, ClientError):
        code, status = error_code(exc)
        if code in _RETRYABLE_CODES or status >= 500 or status in (0, 429):
            return StoreUnavailable(f"{what}: {code or status} ({exc})")
        return StoreMisconfigured(f"{what}: {code or status} ({exc})")
    # Connection refused or reset, timeouts, a body cut short.
    return StoreUnavailable(f"{what}: {type(exc).__name__}: {exc}")


def _is_missing(exc: ClientError) -> bool:
    code, status = error_code(exc)
    return code in _MISSING_CODES or (status == 404 and code != "NoSuchBucket")


class S3ChunkStore(ChunkStore):
    def __init__(self, bucket: str, prefix: str = "", *, endpoint_url: str | None = None,
                 region: str | None = None, max_attempts: int = 5,
                 session: aioboto3.Session | None = None) -> None:
        if not bucket:
            raise ValueError("an S3 chunk store needs a bucket (s3://BUCKET/PREFIX "
                             "or S3_BUCKET_NAME)")
        self.bucket = bucket
        prefix = prefix.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.endpoint_url = endpoint_url or None
        self.region = region or DEFAULT_REGION
        self.description = f"s3://{bucket}/{self.prefix}"
        self._config = Config(
            retries={"total_max_attempts": max_attempts, "mode": "standard"},
            connect_timeout=5, read_timeout=60, max_pool_connections=_CONNECTIONS,
        )
        self._session = session or aioboto3.Session()
        self._exit = contextlib.AsyncExitStack()
        self._client: Any = None
        self._count = 0
        self._bytes = 0
        self._locks = [asyncio.Lock() for _ in range(_LOCK_STRIPES)]

    @classmethod
    def from_spec(cls, spec: str, *, default_prefix: str | None = None,
                  bucket: str | None = None, endpoint_url: str | None = None,
                  region: str | None = None) -> S3ChunkStore:
        """``s3://BUCKET/PREFIX``; an empty bucket (``s3:///PREFIX``) means
        ``bucket`` (S3_BUCKET_NAME), an empty prefix ``default_prefix``."""
        parts = urlsplit(spec)
        if parts.scheme != "s3":
            raise ValueError(f"not an S3 store: {spec!r} (expected s3://BUCKET/PREFIX)")
        prefix = parts.path.strip("/") or (default_prefix or "")
        return cls(parts.netloc or bucket or "", prefix, endpoint_url=endpoint_url,
                   region=region)

    # -- lifecycle ----------------------------------------------------------------------

    async def open(self) -> None:
        try:
            self._client = await self._exit.enter_async_context(self._session.client(
                "s3", endpoint_url=self.endpoint_url, region_name=self.region,
                config=self._config))
            await self._client.head_bucket(Bucket=self.bucket)
            count = total = 0
            async for _, size in self._objects():
                count += 1
                total += size
        except Exception as exc:
            await self.close()
            if isinstance(exc, ClientError) and error_code(exc)[1] == 404:
                raise StoreMisconfigured(f"no bucket named {self.bucket!r} at "
                                         f"{self.endpoint_url or 'AWS'}") from exc
            raise store_error(exc, f"opening {self.description}") from exc
        self._count, self._bytes = count, total

    async def close(self) -> None:
        await self._exit.aclose()
        self._client = None

    # -- the contract -------------------------------------------------------------------

    def _key(self, chunk_id: str) -> str:
        if not is_chunk_id(chunk_id):
            raise ValueError(f"not a chunk id: {chunk_id!r}")
        return f"{self.prefix}{chunk_id[:2]}/{chunk_id[2:4]}/{chunk_id}"

    def _lock(self, chunk_id: str) -> asyncio.Lock:
        return self._locks[zlib.crc32(chunk_id.encode()) % _LOCK_STRIPES]

    async def put(self, chunk_id: str, frame: bytes) -> None:
        key = self._key(chunk_id)
        async with self._lock(chunk_id):
            try:
                try:
                    await self._client.put_object(Bucket=self.bucket, Key=key, Body=frame,
                                                  IfNoneMatch="*")
                    added = True
                except ClientError as exc:
                    if error_code(exc)[0] not in _EXISTS_CODES:
                        raise
                    # Rewriting an existing id replaces a possibly damaged
                    # copy with a verified one (repair).
                    await self._client.put_object(Bucket=self.bucket, Key=key, Body=frame)
                    added = False
            except Exception as exc:
                raise store_error(exc, f"writing chunk {chunk_id} to {self.description}") from exc
            if added:
                self._count += 1
                self._bytes += len(frame)

    async def get(self, chunk_id: str) -> bytes:
        key = self._key(chunk_id)
        try:
            response = await self._client.get_object(Bucket=self.bucket, Key=key)
            body, pieces = response["Body"], []
            async with body:  # releases the connection, read or not
                # The last (empty) read checks the length against Content-Length.
                while piece := await body.read(_PIECE):
                    pieces.append(piece)
        except ClientError as exc:
            if _is_missing(exc):
                raise ChunkMissing(f"chunk {chunk_id} not in {self.description}") from exc
            raise store_error(exc, f"reading chunk {chunk_id}") from exc
        except Exception as exc:
            raise store_error(exc, f"reading chunk {chunk_id}") from exc
        return pieces[0] if len(pieces) == 1 else b"".join(pieces)

    async def _size(self, key: str) -> int | None:
        """The object's size, or None if there is no such object."""
        try:
            head = await self._client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as exc:
            if _is_missing(exc):
                return None
            raise store_error(exc, f"looking up {key}") from exc
        except Exception as exc:
            raise store_error(exc, f"looking up {key}") from exc
        return int(head["ContentLength"])

    async def delete(self, chunk_id: str) -> bool:
        key = self._key(chunk_id)
        async with self._lock(chunk_id):
            size = await self._size(key)
            if size is None:
                return False
            try:
                await self._client.delete_object(Bucket=self.bucket, Key=key)
            except Exception as exc:
                raise store_error(exc, f"deleting chunk {chunk_id}") from exc
            self._count = max(0, self._count - 1)
            self._bytes = max(0, self._bytes - size)
        return True

    async def has(self, chunk_id: str) -> bool:
        return await self._size(self._key(chunk_id)) is not None

    async def _objects(self) -> AsyncIterator[tuple[str, int]]:
        """(chunk id, size) of every chunk under the prefix, in id order."""
        paginator = self._client.get_paginator("list_objects_v2")
        async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            for item in page.get("Contents", ()):
                chunk_id = item["Key"].rpartition("/")[2]
                if is_chunk_id(chunk_id) and item["Key"] == self._key(chunk_id):
                    yield chunk_id, int(item["Size"])

    async def list_ids(self) -> AsyncIterator[str]:
        try:
            async for chunk_id, _ in self._objects():
                yield chunk_id
        except Exception as exc:
            raise store_error(exc, f"listing {self.description}") from exc

    async def usage(self) -> StoreUsage:
        return StoreUsage(self._count, self._bytes, 0, 0)
