"""SigV4 against the worked examples of AWS's S3 documentation ("Signature
Calculations for the Authorization Header", "Query String Authentication",
"Signature Calculations ... in Multiple Chunks"), and the checks around it."""

from __future__ import annotations

import datetime

import pytest
from multidict import CIMultiDict

from echofs.s3.errors import S3Error
from echofs.s3.sigv4 import parse_request

KEY = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AT = datetime.datetime(2013, 5, 24, 0, 0, 10, tzinfo=datetime.UTC)
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _get_object_headers(signature: str) -> CIMultiDict[str]:
    return CIMultiDict({
        "Host": "examplebucket.s3.amazonaws.com", "Range": "bytes=0-9",
        "x-amz-content-sha256": EMPTY, "x-amz-date": "20130524T000000Z",
        "Authorization": f"AWS4-HMAC-SHA256 Credential={KEY}/20130524/us-east-1/s3/"
                         "aws4_request,SignedHeaders=host;range;x-amz-content-sha256;"
                         f"x-amz-date,Signature={signature}"})


def test_get_object_example_verifies():
    signed = parse_request("GET", "/test.txt", "", _get_object_headers(
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"), AT)
    assert signed.access_key == KEY
    signed.verify(SECRET)


def test_wrong_secret_or_tampered_request_does_not_match():
    headers = _get_object_headers(
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
    with pytest.raises(S3Error) as wrong:
        parse_request("GET", "/test.txt", "", headers, AT).verify(SECRET + "x")
    assert wrong.value.code == "SignatureDoesNotMatch"
    headers["Range"] = "bytes=0-99"
    with pytest.raises(S3Error):
        parse_request("GET", "/test.txt", "", headers, AT).verify(SECRET)


def test_presigned_example_verifies_until_it_expires():
    query = ("X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F"
             "20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&"
             "X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature="
             "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
    headers = CIMultiDict({"Host": "examplebucket.s3.amazonaws.com"})
    parse_request("GET", "/test.txt", query, headers, AT).verify(SECRET)
    later = AT + datetime.timedelta(days=1, seconds=1)
    with pytest.raises(S3Error) as expired:
        parse_request("GET", "/test.txt", query, headers, later)
    assert (expired.value.code, expired.value.status) == ("AccessDenied", 403)


def test_clock_skew_and_malformed_headers():
    headers = _get_object_headers("0" * 64)
    with pytest.raises(S3Error) as skewed:
        parse_request("GET", "/test.txt", "", headers, AT + datetime.timedelta(minutes=16))
    assert (skewed.value.code, skewed.value.status) == ("RequestTimeTooSkewed", 403)
    headers["Authorization"] = "AWS4-HMAC-SHA256 Credential=x"
    with pytest.raises(S3Error) as malformed:
        parse_request("GET", "/test.txt", "", headers, AT)
    assert malformed.value.code == "AuthorizationHeaderMalformed"
    del headers["Authorization"]
    with pytest.raises(S3Error) as anonymous:
        parse_request("GET", "/test.txt", "", headers, AT)
    assert anonymous.value.code == "AccessDenied"
