"""PutObject with If-Match / If-None-Match: held against the current
object's ETag when the body is in, just before the commit."""

from __future__ import annotations

import threading

import pytest
from botocore.exceptions import ClientError


def _error(exc: pytest.ExceptionInfo[ClientError]) -> tuple[int, str]:
    return (exc.value.response["ResponseMetadata"]["HTTPStatusCode"],
            exc.value.response["Error"]["Code"])


def test_if_none_match_star_creates_only(s3, bucket):
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"one", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError) as exists:
        s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch="*")
    assert _error(exists) == (412, "PreconditionFailed")
    with pytest.raises(ClientError) as same:
        s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfNoneMatch=etag)
    assert _error(same) == (412, "PreconditionFailed")
    s3.put_object(Bucket=bucket, Key="k", Body=b"three", IfNoneMatch='"0123"')
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"three"


def test_if_match_replaces_only_the_named_object(s3, bucket):
    with pytest.raises(ClientError) as missing:
        s3.put_object(Bucket=bucket, Key="k", Body=b"x", IfMatch="*")
    assert _error(missing) == (404, "NoSuchKey")
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"one")["ETag"]
    with pytest.raises(ClientError) as other:
        s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch='"0123"')
    assert _error(other) == (412, "PreconditionFailed")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"one"
    # The ETag matches with or without its quotes, as S3 compares them.
    s3.put_object(Bucket=bucket, Key="k", Body=b"two", IfMatch=etag.strip('"'))
    s3.put_object(Bucket=bucket, Key="k", Body=b"three", IfMatch="*")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"three"


class _SlowBody:
    """A body whose last read first runs ``before_end`` (another writer)."""

    def __init__(self, data: bytes, before_end) -> None:  # type: ignore[no-untyped-def]
        self.data, self.offset, self.before_end, self.fired = data, 0, before_end, False

    def read(self, size: int = -1) -> bytes:
        size = len(self.data) - self.offset if size < 0 else size
        piece = self.data[self.offset:self.offset + size]
        self.offset += len(piece)
        if self.offset == len(self.data) and piece and not self.fired:
            self.fired = True
            self.before_end()
        return piece

    def seek(self, offset: int, whence: int = 0) -> None:
        self.offset = offset if whence == 0 else len(self.data) + offset

    def tell(self) -> int:
        return self.offset


def test_the_condition_is_held_at_commit_not_at_the_first_byte(s3_node, bucket):
    s3 = s3_node.client()
    etag = s3.put_object(Bucket=bucket, Key="k", Body=b"A" * 1024)["ETag"]
    racer = s3_node.client()

    def overwrite() -> None:
        # Runs on its own thread while the first upload's body is in flight.
        done = threading.Event()

        def go() -> None:
            racer.put_object(Bucket=bucket, Key="k", Body=b"B" * 1024, IfMatch=etag)
            done.set()

        threading.Thread(target=go).start()
        assert done.wait(30)

    with pytest.raises(ClientError) as lost:
        s3.put_object(Bucket=bucket, Key="k", Body=_SlowBody(b"C" * 1024, overwrite),
                      IfMatch=etag)
    assert _error(lost) == (412, "PreconditionFailed")
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"B" * 1024
