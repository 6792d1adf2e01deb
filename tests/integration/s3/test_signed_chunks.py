"""``aws-chunked`` bodies with a signature per chunk (what the Java and Go
SDKs send over HTTP), against a node with accounts: chunk signatures made
with botocore's own SigV4 signer, verified by the endpoint; one bad chunk
and nothing is stored. With a signed trailer too."""

from __future__ import annotations

import hashlib
import os
import secrets

import pytest

from echofs.testing.signed_chunks import put_signed_chunks


def _account_key(node) -> tuple[str, str]:
    login = node.rest("POST", "/api/v1/auth/register",
                      {"username": "c" + secrets.token_hex(4), "password": "chunky password"})
    key = node.rest("POST", "/api/v1/auth/keys", {}, token=login["token"])
    return key["access_key_id"], key["secret_access_key"]


def _put_chunked(node, key_id: str, secret: str, path: str, data: bytes, *,  # type: ignore[no-untyped-def]
                 trailer: bool = False, tamper: int | None = None) -> tuple[int, bytes]:
    return put_signed_chunks(node.endpoint, node.s3_port, key_id, secret, path, data,
                             trailer=trailer, tamper=tamper)


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
