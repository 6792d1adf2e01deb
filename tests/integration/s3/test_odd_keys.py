"""boto3 with keys that are not valid file names: stored escaped under
``<bucket>/.echofs-s3/`` (echofs.s3.keys), every S3 operation on them as on
any key, listings in S3's key order across plain and escaped keys."""

from __future__ import annotations

import hashlib
import json
import unicodedata
import urllib.parse
import urllib.request

import pytest
from botocore.exceptions import ClientError

from echofs.s3.keys import file_path

NFD = unicodedata.normalize("NFD", "café")
LONG = "k" * 1000 + "/" + "x" * 23  # 1024 bytes, a valid name but too long under a bucket
ODD = ["dir/", "a//b", "./x", "a/../b", "/lead", NFD, LONG, "dir/sub/", "tab\tkey",
       ".echofs-s3/x"]


def _code(exc: pytest.ExceptionInfo[ClientError]) -> str:
    return exc.value.response["Error"]["Code"]


def _all_keys(s3, bucket: str, **query) -> list[str]:
    keys, token = [], None
    while True:
        extra = {"ContinuationToken": token} if token else {}
        page = s3.list_objects_v2(Bucket=bucket, **query, **extra)
        keys += [c["Key"] for c in page.get("Contents", [])]
        keys += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            return keys
        token = page["NextContinuationToken"]


def _utf8_order(keys):
    return sorted(keys, key=lambda k: k.encode())


def test_put_get_head_list_delete_every_odd_key(s3, bucket):
    for key in ODD:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode(), ContentType="text/x-odd",
                      Metadata={"k": "v"})
    for key in ODD:
        got = s3.get_object(Bucket=bucket, Key=key)
        assert got["Body"].read() == key.encode()
        assert got["ETag"] == f'"{hashlib.md5(key.encode()).hexdigest()}"'
        assert (got["ContentType"], got["Metadata"]) == ("text/x-odd", {"k": "v"})
        assert s3.head_object(Bucket=bucket, Key=key)["ContentLength"] == len(key.encode())
    # The NFC spelling is another key, and another object.
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key=unicodedata.normalize("NFC", NFD))
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    listed = s3.list_objects_v2(Bucket=bucket)["Contents"]
    assert [c["Key"] for c in listed] == _utf8_order(ODD)
    assert all(c["ETag"].strip('"') == hashlib.md5(c["Key"].encode()).hexdigest()
               for c in listed)
    v1 = s3.list_objects(Bucket=bucket)["Contents"]
    assert [c["Key"] for c in v1] == _utf8_order(ODD)
    for key in ODD[:5]:
        s3.delete_object(Bucket=bucket, Key=key)
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in ODD[5:]]})
    assert sorted(d["Key"] for d in answer["Deleted"]) == sorted(ODD[5:])
    assert s3.list_objects_v2(Bucket=bucket)["KeyCount"] == 0
    s3.delete_bucket(Bucket=bucket)  # empty: nothing was left behind


def test_listing_mixes_plain_and_escaped_keys_in_key_order(s3, bucket):
    keys = ["photos/", "photos/2024/", "photos/2024/a.jpg", "photos/2024//b.jpg",
            "photos/top.jpg", "photos//x", "photos/./y", "readme", "readme/", "/root",
            "z/", "z/one", "é/", "e\u0301"]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert _all_keys(s3, bucket) == _utf8_order(keys)
    versions = s3.list_object_versions(Bucket=bucket)["Versions"]
    assert [v["Key"] for v in versions] == _utf8_order(keys)
    for size in (1, 2, 3, 5):
        assert _all_keys(s3, bucket, MaxKeys=size) == _utf8_order(keys)
    top = s3.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["/", "photos/", "readme/", "z/",
                                                            "é/"]
    assert [c["Key"] for c in top["Contents"]] == ["e\u0301", "readme"]
    photos = s3.list_objects_v2(Bucket=bucket, Prefix="photos/", Delimiter="/")
    assert [c["Key"] for c in photos["Contents"]] == ["photos/", "photos/top.jpg"]
    assert [p["Prefix"] for p in photos["CommonPrefixes"]] == ["photos/./", "photos//",
                                                               "photos/2024/"]
    # A page at a time with a delimiter: common prefixes once each, in order.
    paged = _all_keys(s3, bucket, Prefix="photos/", Delimiter="/", MaxKeys=1)
    assert paged == ["photos/", "photos/./", "photos//", "photos/2024/", "photos/top.jpg"]
    inside = s3.list_objects_v2(Bucket=bucket, Prefix="photos/2024/")
    assert [c["Key"] for c in inside["Contents"]] == ["photos/2024/", "photos/2024//b.jpg",
                                                      "photos/2024/a.jpg"]
    after = s3.list_objects_v2(Bucket=bucket, StartAfter="photos/2024/a.jpg")
    assert [c["Key"] for c in after["Contents"]] == \
        [k for k in _utf8_order(keys) if k.encode() > b"photos/2024/a.jpg"]
    # v1 with a marker and NextMarker.
    v1, marker = [], ""
    while True:
        page = s3.list_objects(Bucket=bucket, Delimiter="/", MaxKeys=2, Marker=marker)
        v1 += [c["Key"] for c in page.get("Contents", [])]
        v1 += [p["Prefix"] for p in page.get("CommonPrefixes", [])]
        if not page["IsTruncated"]:
            break
        marker = page["NextMarker"]
    # (each page lists its keys, then its prefixes)
    assert _utf8_order(v1) == ["/", "e\u0301", "photos/", "readme", "readme/", "z/", "é/"]
    assert len(v1) == len(set(v1))


def test_the_rest_api_names_an_escaped_object(s3_node, s3, bucket):
    s3.put_object(Bucket=bucket, Key="folder/", Body=b"")
    s3.put_object(Bucket=bucket, Key="a//b", Body=b"two slashes")
    name = file_path(bucket, "a//b")
    assert name == f"{bucket}/.echofs-s3/a/%/b"
    url = f"{s3_node.process.url}/api/v1/files/content/{urllib.parse.quote(name)}"
    with urllib.request.urlopen(url) as answer:
        assert answer.read() == b"two slashes"
    query = urllib.parse.urlencode({"prefix": f"{bucket}/"})
    with urllib.request.urlopen(f"{s3_node.process.url}/api/v1/files?{query}") as answer:
        paths = sorted(f["path"] for f in json.loads(answer.read())["files"])
    assert paths == [f"{bucket}/.echofs-s3/a/%/b", f"{bucket}/.echofs-s3/folder/%"]
    # A file written through the REST API under the escaped folder that is
    # no key's escape is not an object.
    put = urllib.request.Request(
        f"{s3_node.process.url}/api/v1/files/content/{bucket}/.echofs-s3/plain",
        data=b"stray", method="PUT")
    with urllib.request.urlopen(put) as answer:
        assert answer.status == 201
    assert [c["Key"] for c in s3.list_objects_v2(Bucket=bucket)["Contents"]] == \
        ["a//b", "folder/"]


def test_copy_and_multipart_with_escaped_keys(s3, bucket):
    s3.put_object(Bucket=bucket, Key="src//one", Body=b"copied bytes")
    s3.copy_object(Bucket=bucket, Key="dst/", CopySource={"Bucket": bucket, "Key": "src//one"})
    assert s3.get_object(Bucket=bucket, Key="dst/")["Body"].read() == b"copied bytes"
    s3.copy_object(Bucket=bucket, Key="plain", CopySource={"Bucket": bucket, "Key": "dst/"})
    assert s3.get_object(Bucket=bucket, Key="plain")["Body"].read() == b"copied bytes"
    upload = s3.create_multipart_upload(Bucket=bucket, Key="big//file",
                                        Metadata={"part": "yes"})["UploadId"]
    uploads = s3.list_multipart_uploads(Bucket=bucket)["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in uploads] == [("big//file", upload)]
    assert [u["Key"] for u in s3.list_multipart_uploads(Bucket=bucket,
                                                        Prefix="big/")["Uploads"]] == \
        ["big//file"]
    first = s3.upload_part(Bucket=bucket, Key="big//file", UploadId=upload, PartNumber=1,
                           Body=b"a" * (5 * 1024 * 1024))
    second = s3.upload_part(Bucket=bucket, Key="big//file", UploadId=upload, PartNumber=2,
                            Body=b"tail")
    assert s3.list_parts(Bucket=bucket, Key="big//file", UploadId=upload)["Parts"]
    s3.complete_multipart_upload(Bucket=bucket, Key="big//file", UploadId=upload,
                                 MultipartUpload={"Parts": [
                                     {"PartNumber": 1, "ETag": first["ETag"]},
                                     {"PartNumber": 2, "ETag": second["ETag"]}]})
    got = s3.get_object(Bucket=bucket, Key="big//file")
    assert got["ContentLength"] == 5 * 1024 * 1024 + 4
    assert got["Metadata"] == {"part": "yes"}
    assert got["ETag"].endswith('-2"')
    assert _utf8_order(_all_keys(s3, bucket)) == ["big//file", "dst/", "plain", "src//one"]


def test_a_1024_byte_key_of_any_kind_is_stored(s3, bucket):
    keys = ["x" * 1024, "y/" * 512, "é" * 512]
    for key in keys:
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode()[:10])
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == key.encode()[:10]
    assert _all_keys(s3, bucket) == _utf8_order(keys)
    with pytest.raises(ClientError) as refused:
        s3.put_object(Bucket=bucket, Key="x" * 1025, Body=b"")
    assert _code(refused) == "KeyTooLongError"
