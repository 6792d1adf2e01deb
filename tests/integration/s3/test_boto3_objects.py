"""boto3 against the embedded node: buckets, objects, listing, errors."""

from __future__ import annotations

import hashlib
import io
import os

import pytest
from botocore.exceptions import ClientError


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def test_put_get_head_delete_roundtrip(s3, bucket):
    body = os.urandom(3 * 1024 * 1024 + 17)
    put = s3.put_object(Bucket=bucket, Key="dir/file.bin", Body=body,
                        ContentType="application/x-test", Metadata={"colour": "blue"})
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    got = s3.get_object(Bucket=bucket, Key="dir/file.bin")
    assert got["Body"].read() == body
    assert got["ETag"] == put["ETag"]
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"colour": "blue"}
    head = s3.head_object(Bucket=bucket, Key="dir/file.bin")
    assert head["ContentLength"] == len(body)
    s3.delete_object(Bucket=bucket, Key="dir/file.bin")
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="dir/file.bin")
    assert _code(missing) == "NoSuchKey"


def test_bucket_lifecycle(s3):
    s3.create_bucket(Bucket="life-cycle")
    assert "life-cycle" in [b["Name"] for b in s3.list_buckets()["Buckets"]]
    s3.head_bucket(Bucket="life-cycle")
    assert s3.get_bucket_location(Bucket="life-cycle")["LocationConstraint"] is None
    with pytest.raises(ClientError) as again:
        s3.create_bucket(Bucket="life-cycle")
    assert _code(again) == "BucketAlreadyOwnedByYou"
    s3.put_object(Bucket="life-cycle", Key="x", Body=b"1")
    with pytest.raises(ClientError) as busy:
        s3.delete_bucket(Bucket="life-cycle")
    assert _code(busy) == "BucketNotEmpty"
    s3.delete_object(Bucket="life-cycle", Key="x")
    s3.delete_bucket(Bucket="life-cycle")
    with pytest.raises(ClientError) as gone:
        s3.head_bucket(Bucket="life-cycle")
    assert gone.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    with pytest.raises(ClientError) as missing:
        s3.list_objects_v2(Bucket="life-cycle")
    assert _code(missing) == "NoSuchBucket"
    with pytest.raises(ClientError) as bad:
        s3.create_bucket(Bucket="Not_Valid")
    assert _code(bad) == "InvalidBucketName"


def test_errors_are_s3_xml_with_a_request_id(s3, bucket):
    with pytest.raises(ClientError) as missing:
        s3.get_object(Bucket=bucket, Key="nope")
    response = missing.value.response
    assert response["Error"]["Code"] == "NoSuchKey"
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 404
    assert response["ResponseMetadata"]["RequestId"]
    assert response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]


def test_ranges_and_conditions(s3, bucket):
    body = bytes(range(256)) * 1000
    etag = s3.put_object(Bucket=bucket, Key="r", Body=body)["ETag"]
    part = s3.get_object(Bucket=bucket, Key="r", Range="bytes=100-299")
    assert part["Body"].read() == body[100:300]
    assert part["ContentRange"] == f"bytes 100-299/{len(body)}"
    assert s3.get_object(Bucket=bucket, Key="r", Range="bytes=-10")["Body"].read() == body[-10:]
    with pytest.raises(ClientError) as bad_range:
        s3.get_object(Bucket=bucket, Key="r", Range=f"bytes={len(body)}-")
    assert _code(bad_range) == "InvalidRange"
    assert s3.get_object(Bucket=bucket, Key="r", IfMatch=etag)["Body"].read() == body
    with pytest.raises(ClientError) as failed:
        s3.get_object(Bucket=bucket, Key="r", IfMatch='"0000"')
    assert _code(failed) == "PreconditionFailed"
    with pytest.raises(ClientError) as not_modified:
        s3.get_object(Bucket=bucket, Key="r", IfNoneMatch=etag)
    assert not_modified.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    modified = s3.head_object(Bucket=bucket, Key="r")["LastModified"]
    with pytest.raises(ClientError) as unchanged:
        s3.get_object(Bucket=bucket, Key="r", IfModifiedSince=modified)
    assert unchanged.value.response["ResponseMetadata"]["HTTPStatusCode"] == 304
    import datetime

    earlier = modified - datetime.timedelta(hours=1)
    with pytest.raises(ClientError) as changed:
        s3.get_object(Bucket=bucket, Key="r", IfUnmodifiedSince=earlier)
    assert _code(changed) == "PreconditionFailed"
    assert s3.get_object(Bucket=bucket, Key="r", IfModifiedSince=earlier)["ContentLength"] \
        == len(body)


def test_content_headers_and_response_overrides(s3, bucket):
    s3.put_object(Bucket=bucket, Key="page.html.gz", Body=b"zipped",
                  ContentType="text/html", ContentEncoding="gzip",
                  ContentDisposition='attachment; filename="page.html"',
                  CacheControl="max-age=60", Metadata={"a": "1", "b-c": "two words"})
    head = s3.head_object(Bucket=bucket, Key="page.html.gz")
    assert (head["ContentType"], head["ContentEncoding"], head["CacheControl"]) == \
        ("text/html", "gzip", "max-age=60")
    assert head["ContentDisposition"] == 'attachment; filename="page.html"'
    assert head["Metadata"] == {"a": "1", "b-c": "two words"}
    got = s3.get_object(Bucket=bucket, Key="page.html.gz", ResponseContentType="text/plain",
                        ResponseContentDisposition="inline")
    assert got["Body"].read() == b"zipped"  # stored as sent, never decoded
    assert (got["ContentType"], got["ContentDisposition"]) == ("text/plain", "inline")


def test_copy_object_with_metadata_directive(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src", Body=b"copy me", ContentType="text/plain",
                  Metadata={"origin": "src"})
    copied = s3.copy_object(Bucket=bucket, Key="dst", CopySource={"Bucket": bucket,
                                                                 "Key": "src"})
    source_etag = s3.head_object(Bucket=bucket, Key="src")["ETag"]
    assert copied["CopyObjectResult"]["ETag"] == source_etag
    dst = s3.get_object(Bucket=bucket, Key="dst")
    assert dst["Body"].read() == b"copy me"
    assert dst["Metadata"] == {"origin": "src"} and dst["ContentType"] == "text/plain"
    s3.copy_object(Bucket=bucket, Key="dst2", CopySource=f"{bucket}/src",
                   MetadataDirective="REPLACE", Metadata={"new": "yes"},
                   ContentType="application/json")
    dst2 = s3.head_object(Bucket=bucket, Key="dst2")
    assert dst2["Metadata"] == {"new": "yes"} and dst2["ContentType"] == "application/json"
    with pytest.raises(ClientError) as to_itself:
        s3.copy_object(Bucket=bucket, Key="src", CopySource=f"{bucket}/src")
    assert _code(to_itself) == "InvalidRequest"
    with pytest.raises(ClientError) as no_source:
        s3.copy_object(Bucket=bucket, Key="x", CopySource=f"{bucket}/absent")
    assert _code(no_source) == "NoSuchKey"


def test_delete_objects(s3, bucket):
    for i in range(5):
        s3.put_object(Bucket=bucket, Key=f"d/{i}", Body=b"x")
    answer = s3.delete_objects(Bucket=bucket, Delete={
        "Objects": [{"Key": f"d/{i}"} for i in range(5)] + [{"Key": "d/absent"}]})
    assert sorted(d["Key"] for d in answer["Deleted"]) == \
        sorted([f"d/{i}" for i in range(5)] + ["d/absent"])
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    quiet = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "q"}], "Quiet": True})
    assert "Deleted" not in quiet


def test_list_objects_v2_prefix_delimiter_pagination(s3, bucket):
    keys = [f"photos/2024/{i:02d}.jpg" for i in range(7)] + \
        [f"photos/2025/{i:02d}.jpg" for i in range(3)] + ["photos/top.jpg", "readme.txt",
                                                          "videos/a.mp4"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [c["Prefix"] for c in top["CommonPrefixes"]] == ["photos/", "videos/"]
    assert [c["Key"] for c in top["Contents"]] == ["readme.txt"]
    assert top["KeyCount"] == 3
    photos = s3.list_objects_v2(Bucket=bucket, Prefix="photos/", Delimiter="/")
    assert [c["Prefix"] for c in photos["CommonPrefixes"]] == ["photos/2024/", "photos/2025/"]
    assert [c["Key"] for c in photos["Contents"]] == ["photos/top.jpg"]
    # Pages of 3 with a continuation token: every key once, in order.
    seen, token = [], None
    while True:
        extra = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, MaxKeys=3, **extra)
        seen += [c["Key"] for c in page.get("Contents", [])]
        assert page["KeyCount"] <= 3
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert seen == sorted(keys)
    # Paging with a delimiter: common prefixes count as entries, never repeat.
    entries, token = [], None
    while True:
        extra = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, Prefix="photos/", Delimiter="/", MaxKeys=1,
                                  **extra)
        entries += [c["Prefix"] for c in page.get("CommonPrefixes", [])]
        entries += [c["Key"] for c in page.get("Contents", [])]
        if not page["IsTruncated"]:
            break
        token = page["NextContinuationToken"]
    assert entries == ["photos/2024/", "photos/2025/", "photos/top.jpg"]
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="photos/top.jpg", FetchOwner=True)
    assert [c["Key"] for c in after["Contents"]] == ["readme.txt", "videos/a.mp4"]
    assert after["Contents"][0]["Owner"]["ID"]
    paginator = s3.get_paginator("list_objects_v2")
    assert sum(p["KeyCount"] for p in paginator.paginate(Bucket=bucket,
                                                         PaginationConfig={"PageSize": 4})) \
        == len(keys)
    etags = {c["Key"]: c["ETag"] for c in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert etags["readme.txt"] == f'"{hashlib.md5(b"readme.txt").hexdigest()}"'


def test_list_objects_v1_marker(s3, bucket):
    for key in ("a/1", "a/2", "b", "c/1", "d"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"")
    first = s3.list_objects(Bucket=bucket, MaxKeys=2, Delimiter="/")
    assert first["IsTruncated"] and [c["Prefix"] for c in first["CommonPrefixes"]] == ["a/"]
    assert [c["Key"] for c in first["Contents"]] == ["b"]
    rest = s3.list_objects(Bucket=bucket, Marker=first["NextMarker"], Delimiter="/")
    assert [c["Prefix"] for c in rest["CommonPrefixes"]] == ["c/"]
    assert [c["Key"] for c in rest["Contents"]] == ["d"]
    plain = s3.list_objects(Bucket=bucket, Marker="a/2")
    assert [c["Key"] for c in plain["Contents"]] == ["b", "c/1", "d"]
    assert plain["Contents"][0]["Size"] == 0


@pytest.mark.parametrize("signature", ["s3v4", "s3"])
def test_presigned_get_and_put(s3_node, bucket, signature):
    import urllib.request

    s3 = s3_node.client(signature_version=signature)

    put_url = s3.generate_presigned_url("put_object", Params={"Bucket": bucket, "Key": "p"},
                                        ExpiresIn=60)
    request = urllib.request.Request(put_url, data=b"presigned body", method="PUT")
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 200
    get_url = s3.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p"},
                                        ExpiresIn=60)
    with urllib.request.urlopen(get_url) as answer:
        assert answer.read() == b"presigned body"


def test_empty_object_and_unicode_keys(s3, bucket):
    s3.put_object(Bucket=bucket, Key="empty", Body=b"")
    got = s3.get_object(Bucket=bucket, Key="empty")
    assert got["Body"].read() == b"" and got["ETag"] == f'"{hashlib.md5(b"").hexdigest()}"'
    key = "dossier/été + ünïcode & spaces?.txt"
    s3.put_object(Bucket=bucket, Key=key, Body=b"u")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"u"
    assert [c["Key"] for c in s3.list_objects_v2(Bucket=bucket, Prefix="dossier/")
            ["Contents"]] == [key]


def test_upload_fileobj_and_download(s3, bucket, tmp_path):
    body = os.urandom(2 * 1024 * 1024)
    s3.upload_fileobj(io.BytesIO(body), bucket, "via-transfer")
    target = tmp_path / "down"
    s3.download_file(bucket, "via-transfer", str(target))
    assert target.read_bytes() == body


def test_unbuilt_operations_are_not_implemented(s3, bucket):
    with pytest.raises(ClientError) as acl:
        s3.get_bucket_acl(Bucket=bucket)
    assert _code(acl) == "NotImplemented"
    assert acl.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501


def test_virtual_host_style_addressing(s3_node, s3, bucket):
    """``bucket.s3.localhost`` names the bucket (signed by botocore, sent to
    the loopback address with that Host: no DNS needed)."""
    import http.client

    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    from echofs.testing.s3 import OPEN_KEY, OPEN_SECRET

    s3.put_object(Bucket=bucket, Key="vh/key.txt", Body=b"virtual host")
    host = f"{bucket}.s3.localhost:{s3_node.s3_port}"
    request = AWSRequest(method="GET", url=f"http://{host}/vh/key.txt")
    S3SigV4Auth(Credentials(OPEN_KEY, OPEN_SECRET), "s3", "us-east-1").add_auth(request)
    connection = http.client.HTTPConnection("127.0.0.1", s3_node.s3_port, timeout=10)
    connection.request("GET", "/vh/key.txt", headers={**dict(request.headers.items()),
                                                     "Host": host})
    answer = connection.getresponse()
    assert (answer.status, answer.read()) == (200, b"virtual host")
    connection.close()


def test_object_is_the_rest_file_bucket_slash_key(s3_node, s3, bucket):
    """One namespace: what S3 wrote, the REST API reads, and the reverse."""
    import json
    import urllib.request

    s3.put_object(Bucket=bucket, Key="shared/one.txt", Body=b"from s3")
    with urllib.request.urlopen(
            f"{s3_node.process.url}/api/v1/files/content/{bucket}/shared/one.txt") as answer:
        assert answer.read() == b"from s3"
    put = urllib.request.Request(
        f"{s3_node.process.url}/api/v1/files/content/{bucket}/shared/two.txt",
        data=b"from rest", method="PUT")
    with urllib.request.urlopen(put) as answer:
        assert answer.status == 201
    got = s3.get_object(Bucket=bucket, Key="shared/two.txt")
    assert got["Body"].read() == b"from rest"
    assert got["ETag"].endswith('-1"')  # no MD5 was computed for it: not claimed as one
    with urllib.request.urlopen(f"{s3_node.process.url}/api/v1/files?prefix={bucket}/") as r:
        paths = [f["path"] for f in json.loads(r.read())["files"]]
    assert paths == [f"{bucket}/shared/one.txt", f"{bucket}/shared/two.txt"]


def test_metrics_per_operation_and_access_log(s3_node, s3, bucket):
    import re
    import urllib.request

    s3.put_object(Bucket=bucket, Key="counted", Body=b"1")
    with pytest.raises(ClientError):
        s3.get_object(Bucket=bucket, Key="not-there")
    with urllib.request.urlopen(f"{s3_node.process.url}/metrics") as answer:
        text = answer.read().decode()

    def value(series: str) -> float:
        found = re.search(rf"^{re.escape(series)} (\S+)$", text, re.MULTILINE)
        assert found, series
        return float(found.group(1))

    assert value('echofs_s3_requests_total{operation="PutObject"}') >= 1
    assert value('echofs_s3_errors_total{code="NoSuchKey"}') >= 1
    assert value('echofs_s3_request_duration_seconds_count{operation="GetObject"}') >= 1
    import time

    # One line per request, as the REST API writes (buffered for a moment).
    line = re.compile(r"\[echofs\.s3\].*method=PUT .*operation=PutObject path=/"
                      + bucket + r"/counted .*status=200")
    missing = re.compile(r"error=NoSuchKey .*operation=GetObject path=/" + bucket)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        log = s3_node.process.log()
        if line.search(log) and missing.search(log):
            break
        time.sleep(0.1)
    assert line.search(log) and missing.search(log)


def test_copy_of_a_rest_written_file_gets_a_true_md5(s3_node, s3, bucket):
    import urllib.request

    put = urllib.request.Request(
        f"{s3_node.process.url}/api/v1/files/content/{bucket}/rest.bin",
        data=b"written over REST", method="PUT")
    urllib.request.urlopen(put).close()
    copied = s3.copy_object(Bucket=bucket, Key="copied.bin", CopySource=f"{bucket}/rest.bin")
    md5 = f'"{hashlib.md5(b"written over REST").hexdigest()}"'
    assert copied["CopyObjectResult"]["ETag"] == md5
    assert s3.head_object(Bucket=bucket, Key="copied.bin")["ETag"] == md5
