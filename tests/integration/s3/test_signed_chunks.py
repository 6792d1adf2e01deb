"""``aws-chunked`` bodies with a signature per chunk (what the Java and Go
SDKs send over HTTP), against a node with accounts: chunk signatures made
with botocore's own SigV4 signer, verified by the endpoint; one bad chunk
and nothing is stored. With a signed trailer too."""

from __future__ import annotations

import base64
import hashlib
import http.client
import os
import secrets
import zlib

import pytest
from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

EMPTY = hashlib.sha256(b"").hexdigest()


class _StreamingAuth(S3SigV4Auth):
    def __init__(self, credentials: Credentials, payload: str) -> None:
        super().__init__(credentials, "s3", "us-east-1")
        self._payload = payload

    def payload(self, request):  # type: ignore[no-untyped-def]
        return self._payload


def _account_key(node) -> tuple[str, str]:
    login = node.rest("POST", "/api/v1/auth/register",
                      {"username": "c" + secrets.token_hex(4), "password": "chunky password"})
    key = node.rest("POST", "/api/v1/auth/keys", {}, token=login["token"])
    return key["access_key_id"], key["secret_access_key"]


def _put_chunked(node, key_id: str, secret: str, path: str, data: bytes, *,
                 trailer: bool = False, tamper: int | None = None) -> tuple[int, bytes]:
    mode = ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" if trailer
            else "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    pieces = [data[i:i + 65536] for i in range(0, len(data), 65536)] + [b""]
    headers = {"Content-Encoding": "aws-chunked",
               "X-Amz-Decoded-Content-Length": str(len(data))}
    if trailer:
        headers["X-Amz-Trailer"] = "x-amz-checksum-crc32"
    request = AWSRequest(method="PUT", url=f"{node.endpoint}{path}", headers=headers)
    signer = _StreamingAuth(Credentials(key_id, secret), mode)
    signer.add_auth(request)
    previous = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    stamp = request.context["timestamp"]
    scope = f"{stamp[:8]}/us-east-1/s3/aws4_request"
    body = b""
    for index, piece in enumerate(pieces):
        text = (f"AWS4-HMAC-SHA256-PAYLOAD\n{stamp}\n{scope}\n{previous}\n{EMPTY}\n"
                + hashlib.sha256(piece).hexdigest())
        signature = signer.signature(text, request)
        sent = piece if index != tamper else b"X" + piece[1:]
        body += f"{len(piece):x};chunk-signature={signature}\r\n".encode() + sent
        body += b"\r\n" if piece or not trailer else b""
        previous = signature
    if trailer:
        crc = base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode()
        line = f"x-amz-checksum-crc32:{crc}\n"
        text = (f"AWS4-HMAC-SHA256-TRAILER\n{stamp}\n{scope}\n{previous}\n"
                + hashlib.sha256(line.encode()).hexdigest())
        body += (f"x-amz-checksum-crc32:{crc}\r\n"
                 f"x-amz-trailer-signature:{signer.signature(text, request)}\r\n\r\n").encode()
    connection = http.client.HTTPConnection("127.0.0.1", node.s3_port, timeout=30)
    connection.request("PUT", path, body=body, headers={
        **dict(request.headers.items()), "Content-Length": str(len(body))})
    answer = connection.getresponse()
    result = answer.status, answer.read()
    connection.close()
    return result


@pytest.mark.parametrize("trailer", [False, True])
def test_signed_chunks_are_verified(accounts_node, trailer):
    key_id, secret = _account_key(accounts_node)
    client = accounts_node.client(key_id, secret)
    bucket = "chunks-" + secrets.token_hex(4)
    client.create_bucket(Bucket=bucket)
    data = os.urandom(200_000)
    status, answer = _put_chunked(accounts_node, key_id, secret, f"/{bucket}/good", data,
                                  trailer=trailer)
    assert status == 200, answer
    got = client.get_object(Bucket=bucket, Key="good")
    assert got["Body"].read() == data
    assert got["ETag"] == f'"{hashlib.md5(data).hexdigest()}"'
    status, answer = _put_chunked(accounts_node, key_id, secret, f"/{bucket}/bad", data,
                                  trailer=trailer, tamper=1)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in answer
    assert "bad" not in [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
