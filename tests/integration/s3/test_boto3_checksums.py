"""What current boto3 sends by default over HTTPS: an ``aws-chunked`` body
with an unsigned payload and a trailing CRC32 (or the checksum asked for),
verified by the endpoint before the object exists."""

from __future__ import annotations

import hashlib
import io
import os

import pytest


@pytest.fixture
def tls_s3(tls_node):
    return tls_node.client()


def _sent(client) -> list[dict[str, str]]:
    seen: list[dict[str, str]] = []
    client.meta.events.register(
        "before-send.s3.PutObject",
        lambda request, **_: seen.append({k.lower(): (v.decode() if isinstance(v, bytes)
                                                      else v)
                                          for k, v in request.headers.items()}))
    return seen


@pytest.mark.parametrize("algorithm", [None, "CRC32", "CRC32C", "SHA256", "SHA1"])
def test_default_trailing_checksums_are_verified(tls_s3, algorithm):
    tls_s3.create_bucket(Bucket="sums") if "sums" not in [
        b["Name"] for b in tls_s3.list_buckets()["Buckets"]] else None
    sent = _sent(tls_s3)
    body = os.urandom(5 * 1024 * 1024 + 3)
    extra = {"ChecksumAlgorithm": algorithm} if algorithm else {}
    put = tls_s3.put_object(Bucket="sums", Key=f"k-{algorithm}", Body=io.BytesIO(body),
                            **extra)
    assert sent[-1]["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
    assert "aws-chunked" in sent[-1]["content-encoding"]
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = tls_s3.get_object(Bucket="sums", Key=f"k-{algorithm}")
    assert got["Body"].read() == body
    assert "ContentEncoding" not in got  # aws-chunked was the transfer, not the object
