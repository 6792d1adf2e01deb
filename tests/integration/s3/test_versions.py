"""ListObjectVersions and DeleteObjects with version ids: S3 sees EchoFS
buckets as unversioned, so every object has one version, ``null``."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError


def test_every_object_is_listed_once_as_its_null_version(s3, bucket):
    for key in ("a", "b/c", "b/d", "e"):
        s3.put_object(Bucket=bucket, Key=key, Body=key.encode())
    listed = s3.list_object_versions(Bucket=bucket)
    assert [(v["Key"], v["VersionId"], v["IsLatest"], v["Size"]) for v in listed["Versions"]] \
        == [("a", "null", True, 1), ("b/c", "null", True, 3), ("b/d", "null", True, 3),
            ("e", "null", True, 1)]
    head = s3.head_object(Bucket=bucket, Key="a")
    assert listed["Versions"][0]["ETag"] == head["ETag"]
    assert "DeleteMarkers" not in listed
    assert listed["IsTruncated"] is False


def test_versions_page_with_key_markers_and_roll_up_with_a_delimiter(s3, bucket):
    for key in ("a", "b/c", "b/d", "e"):
        s3.put_object(Bucket=bucket, Key=key, Body=b"x")
    first = s3.list_object_versions(Bucket=bucket, MaxKeys=2)
    assert [v["Key"] for v in first["Versions"]] == ["a", "b/c"]
    assert (first["IsTruncated"], first["NextKeyMarker"], first["NextVersionIdMarker"]) == \
        (True, "b/c", "null")
    rest = s3.list_object_versions(Bucket=bucket, KeyMarker="b/c", VersionIdMarker="null")
    assert [v["Key"] for v in rest["Versions"]] == ["b/d", "e"]
    rolled = s3.list_object_versions(Bucket=bucket, Delimiter="/")
    assert [v["Key"] for v in rolled["Versions"]] == ["a", "e"]
    assert [p["Prefix"] for p in rolled["CommonPrefixes"]] == ["b/"]


def test_a_version_id_marker_needs_a_key_marker_and_names_null(s3, bucket):
    with pytest.raises(ClientError) as alone:
        s3.list_object_versions(Bucket=bucket, VersionIdMarker="null")
    assert alone.value.response["Error"]["Code"] == "InvalidArgument"
    with pytest.raises(ClientError) as other:
        s3.list_object_versions(Bucket=bucket, KeyMarker="a", VersionIdMarker="3HL4kqtJlcpX")
    assert other.value.response["Error"]["Code"] == "InvalidArgument"


def test_delete_objects_takes_the_null_version_and_refuses_any_other(s3, bucket):
    s3.put_object(Bucket=bucket, Key="k1", Body=b"1")
    s3.put_object(Bucket=bucket, Key="k2", Body=b"2")
    answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": [
        {"Key": "k1", "VersionId": "null"}, {"Key": "k2", "VersionId": "3HL4kqtJlcpX"}]})
    assert answer["Deleted"] == [{"Key": "k1", "VersionId": "null"}]
    assert [(e["Key"], e["VersionId"], e["Code"]) for e in answer["Errors"]] == \
        [("k2", "3HL4kqtJlcpX", "NoSuchVersion")]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]] == ["k2"]
