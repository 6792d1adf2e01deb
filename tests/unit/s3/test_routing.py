"""Which operation a request is, path- and virtual-host-style; which keys
and bucket names are accepted."""

from __future__ import annotations

import pytest

from echofs.s3.errors import S3Error
from echofs.s3.listing import _common_prefix, _skip_point
from echofs.s3.routing import Target, check_bucket_name, file_path, operation_of, target_of

DOMAINS = ("s3.localhost", "localhost")


@pytest.mark.parametrize("path,host,expected", [
    ("/", "127.0.0.1:9000", Target(None, None)),
    ("/photos", "127.0.0.1:9000", Target("photos", None)),
    ("/photos/", "127.0.0.1:9000", Target("photos", None)),
    ("/photos/a/b%20c.jpg", "127.0.0.1:9000", Target("photos", "a/b c.jpg")),
    ("/a/b.jpg", "photos.s3.localhost:9000", Target("photos", "a/b.jpg")),
    ("/", "photos.localhost", Target("photos", None)),
    ("/", "s3.localhost:9000", Target(None, None)),
    ("/photos/x", "example.org", Target("photos", "x")),
])
def test_targets(path, host, expected):
    assert target_of(path, host, DOMAINS) == expected


@pytest.mark.parametrize("method,target,query,headers,name", [
    ("GET", Target(None, None), {}, {}, "ListBuckets"),
    ("PUT", Target("b", None), {}, {}, "CreateBucket"),
    ("GET", Target("b", None), {"list-type": "2"}, {}, "ListObjectsV2"),
    ("GET", Target("b", None), {}, {}, "ListObjects"),
    ("GET", Target("b", None), {"location": ""}, {}, "GetBucketLocation"),
    ("POST", Target("b", None), {"delete": ""}, {}, "DeleteObjects"),
    ("PUT", Target("b", "k"), {}, {"x-amz-copy-source": "/b/j"}, "CopyObject"),
    ("PUT", Target("b", "k"), {"uploadId": "u", "partNumber": "1"}, {}, "UploadPart"),
    ("POST", Target("b", "k"), {"uploads": ""}, {}, "CreateMultipartUpload"),
    ("GET", Target("b", None), {"acl": ""}, {}, "GET:acl"),
])
def test_operations(method, target, query, headers, name):
    assert operation_of(method, target, query, headers) == name


def test_unknown_shapes_are_method_not_allowed():
    with pytest.raises(S3Error) as refused:
        operation_of("POST", Target("b", "k"), {}, {})
    assert (refused.value.code, refused.value.status) == ("MethodNotAllowed", 405)


@pytest.mark.parametrize("name", ["ab", "A-bucket", "-abc", "abc-", "a..b", "192.168.1.1",
                                  "a" * 64, "a_b"])
def test_bad_bucket_names(name):
    with pytest.raises(S3Error) as refused:
        check_bucket_name(name)
    assert refused.value.code == "InvalidBucketName"


def test_keys_map_to_files():
    assert file_path("b", "dir/file.txt") == "b/dir/file.txt"
    # Keys that are not file names are kept, escaped (tests/unit/s3/test_keys.py).
    assert file_path("b", "dir/") == "b/.echofs-s3/dir/%"
    for key, code in (("bad\x00", "InvalidArgument"), ("k" * 1025, "KeyTooLongError")):
        with pytest.raises(S3Error) as refused:
            file_path("b", key)
        assert refused.value.code == code


def test_listing_rolls_up_and_skips_common_prefixes():
    assert _common_prefix("photos/2024/a.jpg", "photos/", "/") == "photos/2024/"
    assert _common_prefix("photos/top.jpg", "photos/", "/") is None
    assert _common_prefix("x", "", "") is None
    # Resuming after a common prefix skips everything under it.
    assert _skip_point("", "/", "a/") > "a/zzzz"
    assert _skip_point("", "/", "b") == "b"


def test_escapes_that_are_not_utf8_are_refused():
    with pytest.raises(S3Error) as refused:
        target_of("/b/%ff%fe", "127.0.0.1", DOMAINS)
    assert (refused.value.code, refused.value.status) == ("InvalidURI", 400)


def test_continuation_tokens_are_checked():
    from echofs.s3.listing import _decode_token, _encode_token

    assert _decode_token(_encode_token("photos/2024/\u00e9t\u00e9")) == "photos/2024/\u00e9t\u00e9"
    for bad in ("%%%", "not base64!"):
        with pytest.raises(S3Error) as refused:
            _decode_token(bad)
        assert refused.value.code == "InvalidArgument"
