"""An ``aws-chunked`` PUT with a signature per chunk, as the Java and Go SDKs
send over HTTP (boto3 never does): chunk and trailer signatures made with
botocore's own SigV4 signer, for the tests of the S3 endpoint's verification."""

from __future__ import annotations

import base64
import hashlib
import http.client
import zlib

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
CHUNK = 65536


class _StreamingAuth(S3SigV4Auth):
    def __init__(self, credentials: Credentials, payload: str) -> None:
        super().__init__(credentials, "s3", "us-east-1")
        self._payload = payload

    def payload(self, request):  # type: ignore[no-untyped-def]
        return self._payload


def put_signed_chunks(endpoint: str, port: int, key_id: str, secret: str, path: str,
                      data: bytes, *, trailer: bool = False,
                      tamper: int | None = None) -> tuple[int, bytes]:
    """PUT ``data`` to ``path`` in signed 64 KiB chunks (with a signed CRC32
    trailer if ``trailer``); chunk number ``tamper`` has a byte changed after
    signing. The answer's status and body."""
    mode = ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER" if trailer
            else "STREAMING-AWS4-HMAC-SHA256-PAYLOAD")
    pieces = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] + [b""]
    headers = {"Content-Encoding": "aws-chunked",
               "X-Amz-Decoded-Content-Length": str(len(data))}
    if trailer:
        headers["X-Amz-Trailer"] = "x-amz-checksum-crc32"
    request = AWSRequest(method="PUT", url=f"{endpoint}{path}", headers=headers)
    signer = _StreamingAuth(Credentials(key_id, secret), mode)
    signer.add_auth(request)
    previous = request.headers["Authorization"].rsplit("Signature=", 1)[1]
    stamp = request.context["timestamp"]
    scope = f"{stamp[:8]}/us-east-1/s3/aws4_request"
    body = b""
    for index, piece in enumerate(pieces):
        text = (f"AWS4-HMAC-SHA256-PAYLOAD\n{stamp}\n{scope}\n{previous}\n{EMPTY_SHA256}\n"
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
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("PUT", path, body=body, headers={
            **dict(request.headers.items()), "Content-Length": str(len(body))})
        answer = connection.getresponse()
        return answer.status, answer.read()
    finally:
        connection.close()
