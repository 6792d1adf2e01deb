"""S3 multipart uploads through boto3 against the embedded node: create,
parts (plain, aws-chunked with trailing checksums, server-side copies),
complete with S3's checks, abort, ListParts and ListMultipartUploads with
their pagination, and the errors S3 answers."""

from __future__ import annotations

import hashlib
import os

import pytest
from botocore.exceptions import ClientError

MIB = 1024 * 1024


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


def _multipart_etag(parts: list[bytes]) -> str:
    digests = b"".join(hashlib.md5(p).digest() for p in parts)
    return f'"{hashlib.md5(digests).hexdigest()}-{len(parts)}"'


def test_create_upload_complete_lands_metadata_and_etag(s3, bucket):
    created = s3.create_multipart_upload(
        Bucket=bucket, Key="dir/big.bin", ContentType="application/x-test",
        Metadata={"colour": "blue"})
    upload_id = created["UploadId"]
    assert created["Key"] == "dir/big.bin"
    bodies = [os.urandom(5 * MIB), os.urandom(5 * MIB + 3), os.urandom(17)]
    etags = []
    # Sent out of order: the part numbers say where each goes.
    for number in (2, 1, 3):
        answer = s3.upload_part(Bucket=bucket, Key="dir/big.bin", UploadId=upload_id,
                                PartNumber=number, Body=bodies[number - 1])
        assert answer["ETag"] == f'"{hashlib.md5(bodies[number - 1]).hexdigest()}"'
        etags.append((number, answer["ETag"]))
    # Not visible before complete.
    with pytest.raises(ClientError) as missing:
        s3.head_object(Bucket=bucket, Key="dir/big.bin")
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404
    done = s3.complete_multipart_upload(
        Bucket=bucket, Key="dir/big.bin", UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in sorted(etags)]})
    assert done["ETag"] == _multipart_etag(bodies)
    got = s3.get_object(Bucket=bucket, Key="dir/big.bin")
    assert got["Body"].read() == b"".join(bodies)
    assert got["ETag"] == _multipart_etag(bodies)
    assert got["ContentType"] == "application/x-test"
    assert got["Metadata"] == {"colour": "blue"}
    # The upload is gone once completed.
    with pytest.raises(ClientError) as gone:
        s3.list_parts(Bucket=bucket, Key="dir/big.bin", UploadId=upload_id)
    assert _code(gone) == "NoSuchUpload"


def test_complete_names_a_subset_of_parts(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    first, extra, last = os.urandom(5 * MIB), b"left out", b"tail"
    e1 = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1,
                        Body=first)["ETag"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=5, Body=extra)
    e9 = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=9,
                        Body=last)["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": e1}, {"PartNumber": 9, "ETag": e9}]})
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == first + last


def test_a_part_sent_again_replaces_the_first(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"old")
    etag = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1,
                          Body=b"new")["ETag"]
    parts = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in parts] == [(1, etag, 3)]
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id,
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert s3.get_object(Bucket=bucket, Key="k")["Body"].read() == b"new"


def test_complete_errors(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    small = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1,
                           Body=b"x" * 1000)["ETag"]
    big = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2,
                         Body=b"y" * (5 * MIB))["ETag"]

    def complete(parts: list[tuple[int, str]]) -> str:
        with pytest.raises(ClientError) as refused:
            s3.complete_multipart_upload(
                Bucket=bucket, Key="k", UploadId=upload_id,
                MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e} for n, e in parts]})
        return _code(refused)

    assert complete([(1, small), (2, big)]) == "EntityTooSmall"
    assert complete([(2, big), (1, small)]) == "InvalidPartOrder"
    assert complete([(2, big), (2, big)]) == "InvalidPartOrder"
    assert complete([(1, '"' + "0" * 32 + '"')]) == "InvalidPart"
    assert complete([(3, big)]) == "InvalidPart"
    # Nothing was committed, and the upload is still there: a right list works.
    s3.complete_multipart_upload(Bucket=bucket, Key="k", UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": 2, "ETag": big}]})
    assert s3.head_object(Bucket=bucket, Key="k")["ContentLength"] == 5 * MIB


def test_no_such_upload(s3, bucket):
    kwargs = {"Bucket": bucket, "Key": "k", "UploadId": "0" * 32}
    for call in (lambda: s3.upload_part(PartNumber=1, Body=b"x", **kwargs),
                 lambda: s3.list_parts(**kwargs),
                 lambda: s3.abort_multipart_upload(**kwargs),
                 lambda: s3.complete_multipart_upload(MultipartUpload={
                     "Parts": [{"PartNumber": 1, "ETag": '"x"'}]}, **kwargs)):
        with pytest.raises(ClientError) as refused:
            call()
        assert _code(refused) == "NoSuchUpload"
    # An upload of another key is not this key's.
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="other")["UploadId"]
    with pytest.raises(ClientError) as refused:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert _code(refused) == "NoSuchUpload"
    # Aborted: gone for every operation.
    s3.abort_multipart_upload(Bucket=bucket, Key="other", UploadId=upload_id)
    with pytest.raises(ClientError) as refused:
        s3.upload_part(Bucket=bucket, Key="other", UploadId=upload_id, PartNumber=1, Body=b"x")
    assert _code(refused) == "NoSuchUpload"
    with pytest.raises(ClientError) as refused:
        s3.upload_part(Bucket=bucket, Key="other", UploadId=upload_id, PartNumber=0, Body=b"x")
    assert _code(refused) == "InvalidArgument"


def test_list_parts_pages(s3, bucket):
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    for number in range(1, 8):
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=number,
                       Body=bytes([number]) * number)
    seen, marker = [], 0
    while True:
        page = s3.list_parts(Bucket=bucket, Key="k", UploadId=upload_id, MaxParts=3,
                             PartNumberMarker=marker)
        seen += [(p["PartNumber"], p["Size"]) for p in page["Parts"]]
        if not page["IsTruncated"]:
            break
        marker = page["NextPartNumberMarker"]
    assert seen == [(n, n) for n in range(1, 8)]
    paginated = s3.get_paginator("list_parts").paginate(
        Bucket=bucket, Key="k", UploadId=upload_id, PaginationConfig={"PageSize": 2})
    assert [p["PartNumber"] for page in paginated for p in page["Parts"]] == list(range(1, 8))


def test_list_multipart_uploads(s3, bucket):
    ids = {}
    for key in ("a/1", "a/2", "a/2", "b/1", "c"):
        ids.setdefault(key, []).append(
            s3.create_multipart_upload(Bucket=bucket, Key=key)["UploadId"])
    listed = s3.list_multipart_uploads(Bucket=bucket)
    pairs = [(u["Key"], u["UploadId"]) for u in listed["Uploads"]]
    assert pairs == sorted((k, i) for k, v in ids.items() for i in v)
    assert not listed["IsTruncated"]
    prefixed = s3.list_multipart_uploads(Bucket=bucket, Prefix="a/")
    assert [u["Key"] for u in prefixed["Uploads"]] == ["a/1", "a/2", "a/2"]
    # Pages of two: key-marker and upload-id-marker carry on exactly.
    got, key_marker, id_marker = [], "", ""
    while True:
        page = s3.list_multipart_uploads(Bucket=bucket, MaxUploads=2, KeyMarker=key_marker,
                                         UploadIdMarker=id_marker)
        got += [(u["Key"], u["UploadId"]) for u in page.get("Uploads", [])]
        if not page["IsTruncated"]:
            break
        key_marker, id_marker = page["NextKeyMarker"], page["NextUploadIdMarker"]
    assert got == pairs
    # Aborted and completed uploads are not listed.
    s3.abort_multipart_upload(Bucket=bucket, Key="c", UploadId=ids["c"][0])
    etag = s3.upload_part(Bucket=bucket, Key="b/1", UploadId=ids["b/1"][0], PartNumber=1,
                          Body=b"z")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="b/1", UploadId=ids["b/1"][0],
                                 MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    left = s3.list_multipart_uploads(Bucket=bucket)
    assert [u["Key"] for u in left["Uploads"]] == ["a/1", "a/2", "a/2"]


def test_upload_part_copy_whole_and_ranges(s3, bucket):
    source = os.urandom(7 * MIB + 11)
    s3.put_object(Bucket=bucket, Key="src", Body=source)
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="dst")["UploadId"]
    first = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=1,
                                CopySource={"Bucket": bucket, "Key": "src"})
    assert first["CopyPartResult"]["ETag"] == f'"{hashlib.md5(source).hexdigest()}"'
    second = s3.upload_part_copy(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=2,
                                 CopySource={"Bucket": bucket, "Key": "src"},
                                 CopySourceRange=f"bytes=100-{100 + 5 * MIB - 1}")
    tail = s3.upload_part(Bucket=bucket, Key="dst", UploadId=upload_id, PartNumber=3,
                          Body=b"end")["ETag"]
    s3.complete_multipart_upload(Bucket=bucket, Key="dst", UploadId=upload_id, MultipartUpload={
        "Parts": [{"PartNumber": 1, "ETag": first["CopyPartResult"]["ETag"]},
                  {"PartNumber": 2, "ETag": second["CopyPartResult"]["ETag"]},
                  {"PartNumber": 3, "ETag": tail}]})
    assert s3.get_object(Bucket=bucket, Key="dst")["Body"].read() == \
        source + source[100:100 + 5 * MIB] + b"end"
    for bad, code in (("bytes=5-", "InvalidArgument"), ("bytes=10-5", "InvalidRange"),
                      (f"bytes=0-{len(source)}", "InvalidRange")):
        with pytest.raises(ClientError) as refused:
            s3.upload_part_copy(Bucket=bucket, Key="dst2", UploadId=s3.create_multipart_upload(
                Bucket=bucket, Key="dst2")["UploadId"], PartNumber=1,
                CopySource={"Bucket": bucket, "Key": "src"}, CopySourceRange=bad)
        assert _code(refused) == code
    with pytest.raises(ClientError) as refused:
        s3.upload_part_copy(Bucket=bucket, Key="dst2", UploadId=s3.create_multipart_upload(
            Bucket=bucket, Key="dst2")["UploadId"], PartNumber=1,
            CopySource={"Bucket": bucket, "Key": "absent"})
    assert _code(refused) == "NoSuchKey"


def test_upload_part_with_checksums_and_content_md5(s3, bucket):
    """boto3 sends parts aws-chunked with a trailing CRC32 when asked for a
    checksum algorithm; a wrong Content-MD5 stores nothing."""
    upload_id = s3.create_multipart_upload(Bucket=bucket, Key="k",
                                           ChecksumAlgorithm="CRC32")["UploadId"]
    body = os.urandom(5 * MIB + 1)
    answer = s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=1,
                            Body=body, ChecksumAlgorithm="CRC32")
    assert answer["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert "ChecksumCRC32" in answer
    with pytest.raises(ClientError) as refused:
        s3.upload_part(Bucket=bucket, Key="k", UploadId=upload_id, PartNumber=2, Body=b"abc",
                       ContentMD5="AAAAAAAAAAAAAAAAAAAAAA==")
    assert _code(refused) == "BadDigest"
    assert [p["PartNumber"] for p in s3.list_parts(Bucket=bucket, Key="k",
                                                    UploadId=upload_id)["Parts"]] == [1]
