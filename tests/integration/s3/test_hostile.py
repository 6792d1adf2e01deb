"""Odd and hostile S3 requests get S3's error document with a 4xx/5xx code
that says what is wrong — never a 500, never a stored object."""

from __future__ import annotations

import http.client
import socket
import time

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from echofs.testing.s3 import OPEN_KEY, OPEN_SECRET

BUCKET = "hostile"


@pytest.fixture(scope="module", autouse=True)
def hostile_bucket(s3_node):
    s3_node.client().create_bucket(Bucket=BUCKET)


def _signed(node, method: str, path: str, body: bytes = b"",
            headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    request = AWSRequest(method=method, url=f"{node.endpoint}{path}", data=body,
                         headers=headers or {})
    S3SigV4Auth(Credentials(OPEN_KEY, OPEN_SECRET), "s3", "us-east-1").add_auth(request)
    connection = http.client.HTTPConnection("127.0.0.1", node.s3_port, timeout=10)
    connection.request(method, path, body=body, headers=dict(request.headers.items()))
    answer = connection.getresponse()
    data = answer.read()
    connection.close()
    return answer.status, data


@pytest.mark.parametrize("method,path,body,headers,status,code", [
    ("GET", f"/{BUCKET}/%ff%fe", b"", {}, 400, "InvalidURI"),
    ("PUT", f"/{BUCKET}/a%00b", b"x", {}, 400, "InvalidArgument"),
    ("GET", f"/{BUCKET}?list-type=3", b"", {}, 400, "InvalidArgument"),
    ("GET", f"/{BUCKET}?list-type=2&max-keys=abc", b"", {}, 400, "InvalidArgument"),
    ("GET", f"/{BUCKET}?list-type=2&continuation-token=%25%25", b"", {}, 400,
     "InvalidArgument"),
    ("GET", f"/{BUCKET}?list-type=2&encoding-type=xml", b"", {}, 400, "InvalidArgument"),
    ("POST", f"/{BUCKET}?delete", b"<not xml", {}, 400, "MalformedXML"),
    ("POST", f"/{BUCKET}?delete",
     b"<!DOCTYPE x [<!ENTITY a 'b'>]><Delete><Object><Key>&a;</Key></Object></Delete>", {},
     400, "MalformedXML"),
    ("PUT", f"/{BUCKET}/k", b"abc", {"x-amz-checksum-crc32": "AAAAAA=="}, 400, "BadDigest"),
    ("PUT", f"/{BUCKET}/k", b"abc", {"x-amz-checksum-crc64nvme": "AAAAAAAAAAA="}, 400,
     "InvalidRequest"),
    ("PUT", f"/{BUCKET}/k", b"abc", {"Content-MD5": "notbase64!"}, 400, "InvalidDigest"),
    ("PUT", f"/{BUCKET}/k", b"abc", {"Content-MD5": "1B2M2Y8AsgTpgAmY7PhCfg=="}, 400,
     "BadDigest"),
    ("PUT", f"/{BUCKET}/k", b"abc", {"Content-Encoding": "aws-chunked"}, 400,
     "InvalidArgument"),
    ("PUT", f"/{BUCKET}/k2", b"", {"x-amz-copy-source": f"/{BUCKET}"}, 400,
     "InvalidArgument"),
    ("PUT", f"/{BUCKET}/k2", b"", {"x-amz-copy-source": "/nosuch/k"}, 404, "NoSuchBucket"),
    ("PUT", f"/{BUCKET}/" + "k" * 1100, b"x", {}, 400, "KeyTooLongError"),
    ("PUT", "/UPPER", b"", {}, 400, "InvalidBucketName"),
    ("POST", f"/{BUCKET}/k", b"", {}, 405, "MethodNotAllowed"),
    ("PUT", f"/{BUCKET}?acl", b"", {}, 501, "NotImplemented"),
    ("PUT", f"/{BUCKET}/k?tagging", b"", {}, 501, "NotImplemented"),
])
def test_refused_with_the_right_code(s3_node, method, path, body, headers, status, code):
    got_status, data = _signed(s3_node, method, path, body, headers)
    assert (got_status, f"<Code>{code}</Code>" in data.decode("utf-8", "replace")) == \
        (status, True), data
    # Nothing half-stored under the name.
    assert _signed(s3_node, "HEAD", f"/{BUCKET}/k")[0] == 404


def test_truncated_body_stores_nothing(s3_node):
    request = AWSRequest(method="PUT", url=f"{s3_node.endpoint}/{BUCKET}/cut",
                         headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"})
    S3SigV4Auth(Credentials(OPEN_KEY, OPEN_SECRET), "s3", "us-east-1").add_auth(request)
    head = f"PUT /{BUCKET}/cut HTTP/1.1\r\nHost: 127.0.0.1:{s3_node.s3_port}\r\n" + "".join(
        f"{k}: {v}\r\n" for k, v in request.headers.items()) + "Content-Length: 100000\r\n\r\n"
    with socket.create_connection(("127.0.0.1", s3_node.s3_port)) as sock:
        sock.sendall(head.encode() + b"x" * 5000)
    # Once the server has finished with the request (its log line)...
    deadline = time.monotonic() + 10
    while f"path=/{BUCKET}/cut " not in s3_node.process.log() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert f"path=/{BUCKET}/cut " in s3_node.process.log()
    # ... the cut upload is nowhere.
    assert _signed(s3_node, "HEAD", f"/{BUCKET}/cut")[0] == 404
