"""Answers S3 clients and conformance suites rely on at the edges of a
request: CORS preflights, anonymous requests for buckets that do not exist,
ListBuckets pages, ListObjects v1's Prefix under encoding-type=url, and
Content-Encoding kept as the client spelled it."""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from botocore import UNSIGNED
from botocore.exceptions import ClientError


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def _options(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    request = urllib.request.Request(url, method="OPTIONS", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as refused:
        return refused.code, refused.read()


def test_a_cors_preflight_is_refused_as_for_a_bucket_without_cors(s3_node, bucket):
    url = f"{s3_node.endpoint}/{bucket}/k"
    status, body = _options(url, {})
    assert (status, b"<Code>BadRequest</Code>" in body) == (400, True)
    status, body = _options(url, {"Origin": "https://example.org",
                                  "Access-Control-Request-Method": "GET"})
    assert (status, b"<Code>AccessForbidden</Code>" in body) == (403, True)


def test_an_anonymous_request_for_a_missing_bucket_is_no_such_bucket(s3_node, s3, bucket):
    anonymous = s3_node.client(signature_version=UNSIGNED)
    with pytest.raises(ClientError) as missing:
        anonymous.get_object(Bucket="no-such-bucket-here", Key="k")
    assert _code(missing) == "NoSuchBucket"
    with pytest.raises(ClientError) as existing:
        anonymous.get_object(Bucket=bucket, Key="k")
    assert _code(existing) == "AccessDenied"


def test_list_buckets_pages_with_a_continuation_token(s3):
    names = [f"page-{n}-bkt" for n in range(3)]
    for name in names:
        s3.create_bucket(Bucket=name)
    first = s3.list_buckets(MaxBuckets=2, Prefix="page-")
    assert [b["Name"] for b in first["Buckets"]] == names[:2]
    assert first["Prefix"] == "page-"
    rest = s3.list_buckets(MaxBuckets=2, Prefix="page-",
                           ContinuationToken=first["ContinuationToken"])
    assert [b["Name"] for b in rest["Buckets"]] == names[2:]
    assert "ContinuationToken" not in rest
    with pytest.raises(ClientError) as bad:
        s3.list_buckets(MaxBuckets=2, ContinuationToken="not base64!")
    assert _code(bad) == "InvalidArgument"


def test_list_objects_v1_sends_its_prefix_unencoded(s3, bucket):
    s3.put_object(Bucket=bucket, Key="a b/c", Body=b"x")
    # boto3 asks for encoding-type=url and decodes v1's keys, not its Prefix.
    listed = s3.list_objects(Bucket=bucket, Prefix="a b/")
    assert listed["Prefix"] == "a b/"
    assert [o["Key"] for o in listed["Contents"]] == ["a b/c"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix="a b/")["Prefix"] == "a b/"


def test_content_encoding_is_kept_as_the_client_wrote_it(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k", Body=b"x", ContentEncoding="deflate, gzip")
    assert s3.head_object(Bucket=bucket, Key="k")["ContentEncoding"] == "deflate, gzip"
