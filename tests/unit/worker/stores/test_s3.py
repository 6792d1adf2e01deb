"""What the S3 store adds to the chunk-store contract: how ``--store s3://``
is read, what it counts at open, large frames, and which failures are worth
retrying. The contract itself runs in test_contract.py; these run against moto
on loopback, and against a deliberately failing endpoint for the errors."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator

import aioboto3
import pytest
from aiohttp import web
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from echofs.core.chunk_codec import encode_chunk
from echofs.core.errors import ChunkMissing, StoreMisconfigured, StoreUnavailable
from echofs.testing.process import free_port
from echofs.testing.services import S3_TEST_ENV, MotoServer
from echofs.worker.stores import open_store
from echofs.worker.stores.s3 import S3ChunkStore, store_error

MIB = 1024 * 1024


def test_spec_names_bucket_and_prefix() -> None:
    store = open_store("s3://bucket/some/prefix/", worker_id="w1")
    assert isinstance(store, S3ChunkStore)
    assert (store.bucket, store.prefix) == ("bucket", "some/prefix/")
    assert store.description == "s3://bucket/some/prefix/"


def test_spec_without_prefix_uses_the_worker_id() -> None:
    store = open_store("s3://bucket", worker_id="w7")
    assert isinstance(store, S3ChunkStore)
    assert (store.bucket, store.prefix) == ("bucket", "w7/")


def test_spec_without_bucket_uses_the_setting() -> None:
    store = open_store("s3:///w1", s3_bucket="from-env", s3_endpoint_url="http://127.0.0.1:9",
                       aws_region="eu-west-1")
    assert isinstance(store, S3ChunkStore)
    assert (store.bucket, store.prefix) == ("from-env", "w1/")
    assert (store.endpoint_url, store.region) == ("http://127.0.0.1:9", "eu-west-1")
    with pytest.raises(ValueError, match="bucket"):
        open_store("s3:///w1")


@pytest.fixture
async def store(moto_server: MotoServer, s3_bucket: str) -> AsyncIterator[S3ChunkStore]:
    s = moto_server.store(s3_bucket, "w1")
    await s.open()
    try:
        yield s
    finally:
        await s.close()


async def test_open_counts_what_the_prefix_holds(moto_server: MotoServer, s3_bucket: str,
                                                 store: S3ChunkStore) -> None:
    chunks = [encode_chunk(os.urandom(1000 + i)) for i in range(5)]
    for enc in chunks:
        await store.put(enc.chunk_id, enc.frame)
    # Another worker's prefix and foreign objects are not ours to count.
    other = moto_server.store(s3_bucket, "w2")
    await other.open()
    try:
        extra = encode_chunk(b"someone else's")
        await other.put(extra.chunk_id, extra.frame)
    finally:
        await other.close()
    moto_server.client().put_object(Bucket=s3_bucket, Key="w1/README", Body=b"not a chunk")

    reopened = moto_server.store(s3_bucket, "w1")
    await reopened.open()
    try:
        usage = await reopened.usage()
        assert usage.chunk_count == 5
        assert usage.bytes_stored == sum(len(enc.frame) for enc in chunks)
        listed = [cid async for cid in reopened.list_ids()]
        assert listed == sorted(enc.chunk_id for enc in chunks)
    finally:
        await reopened.close()


async def test_objects_are_laid_out_like_the_local_store(moto_server: MotoServer,
                                                         s3_bucket: str,
                                                         store: S3ChunkStore) -> None:
    enc = encode_chunk(b"where does it go")
    await store.put(enc.chunk_id, enc.frame)
    key = f"w1/{enc.chunk_id[:2]}/{enc.chunk_id[2:4]}/{enc.chunk_id}"
    body = moto_server.client().get_object(Bucket=s3_bucket, Key=key)["Body"].read()
    assert body == enc.frame


async def test_large_frame_round_trip(store: S3ChunkStore) -> None:
    enc = encode_chunk(os.urandom(24 * MIB))
    await store.put(enc.chunk_id, enc.frame)
    assert await store.get(enc.chunk_id) == enc.frame


async def test_ids_that_are_not_chunk_ids_are_refused(store: S3ChunkStore) -> None:
    for bad in ("../../etc/passwd", "ab", "x" * 64):
        with pytest.raises(ValueError):
            await store.get(bad)


async def test_missing_bucket_refuses_to_open(moto_server: MotoServer) -> None:
    s = moto_server.store("no-such-bucket", "w1")
    with pytest.raises(StoreMisconfigured, match="no-such-bucket"):
        await s.open()


async def test_unreachable_endpoint_is_unavailable() -> None:
    s = S3ChunkStore("bucket", "w1", endpoint_url=f"http://127.0.0.1:{free_port()}",
                     max_attempts=1, session=_session())
    with pytest.raises(StoreUnavailable):
        await s.open()


def _client_error(code: str, status: int) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code},
                        "ResponseMetadata": {"HTTPStatusCode": status}}, "GetObject")


@pytest.mark.parametrize(("error", "kind"), [
    (_client_error("SlowDown", 503), StoreUnavailable),
    (_client_error("InternalError", 500), StoreUnavailable),
    (_client_error("RequestTimeout", 400), StoreUnavailable),
    (_client_error("TooManyRequests", 429), StoreUnavailable),
    (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), StoreUnavailable),
    (TimeoutError(), StoreUnavailable),
    (_client_error("AccessDenied", 403), StoreMisconfigured),
    (_client_error("InvalidAccessKeyId", 403), StoreMisconfigured),
    (_client_error("NoSuchBucket", 404), StoreMisconfigured),
    (NoCredentialsError(), StoreMisconfigured),
])
def test_errors_map_to_retryable_or_not(error: Exception, kind: type[Exception]) -> None:
    mapped = store_error(error, "reading chunk x")
    assert type(mapped) is kind
    assert "reading chunk x" in str(mapped)


# -- a failing endpoint: does botocore's retry really run, and stop? -----------------


class FlakyS3:
    """Answers GETs with ``failures`` errors before the real object."""

    def __init__(self, frame: bytes, failures: int, status: int = 503,
                 code: str = "SlowDown") -> None:
        self.frame, self.failures, self.status, self.code = frame, failures, status, code
        self.requests = 0
        self.port = free_port()
        self._runner: web.AppRunner | None = None

    async def handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        if self.requests <= self.failures:
            body = (f"<Error><Code>{self.code}</Code><Message>try later</Message></Error>")
            return web.Response(status=self.status, body=body.encode(),
                                content_type="application/xml")
        return web.Response(body=self.frame, content_type="application/octet-stream")

    async def __aenter__(self) -> FlakyS3:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    def store(self, max_attempts: int) -> S3ChunkStore:
        s = S3ChunkStore("bucket", "w1", endpoint_url=f"http://127.0.0.1:{self.port}",
                         max_attempts=max_attempts, session=_session())
        return s


def _session() -> aioboto3.Session:
    return aioboto3.Session(aws_access_key_id=S3_TEST_ENV["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=S3_TEST_ENV["AWS_SECRET_ACCESS_KEY"])


async def _opened_client(store: S3ChunkStore) -> None:
    # Skip open()'s bucket check and listing: only GET is answered here.
    store._client = await store._exit.enter_async_context(store._session.client(
        "s3", endpoint_url=store.endpoint_url, region_name=store.region, config=store._config))


async def test_throttling_is_retried_until_it_succeeds() -> None:
    enc = encode_chunk(b"patience")
    async with FlakyS3(enc.frame, failures=2) as s3:
        store = s3.store(max_attempts=3)
        await _opened_client(store)
        try:
            assert await store.get(enc.chunk_id) == enc.frame
        finally:
            await store.close()
        assert s3.requests == 3


async def test_persistent_5xx_gives_up_as_unavailable() -> None:
    enc = encode_chunk(b"never")
    async with FlakyS3(enc.frame, failures=100, status=500, code="InternalError") as s3:
        store = s3.store(max_attempts=2)
        await _opened_client(store)
        try:
            with pytest.raises(StoreUnavailable):
                await store.get(enc.chunk_id)
        finally:
            await store.close()
        assert s3.requests == 2


async def test_access_denied_is_not_retried() -> None:
    enc = encode_chunk(b"forbidden")
    async with FlakyS3(enc.frame, failures=100, status=403, code="AccessDenied") as s3:
        store = s3.store(max_attempts=5)
        await _opened_client(store)
        try:
            with pytest.raises(StoreMisconfigured):
                await store.get(enc.chunk_id)
        finally:
            await store.close()
        assert s3.requests == 1


async def test_missing_object_is_chunk_missing_not_retried() -> None:
    enc = encode_chunk(b"gone")
    async with FlakyS3(enc.frame, failures=100, status=404, code="NoSuchKey") as s3:
        store = s3.store(max_attempts=5)
        await _opened_client(store)
        try:
            with pytest.raises(ChunkMissing):
                await store.get(enc.chunk_id)
        finally:
            await store.close()
        assert s3.requests == 1
