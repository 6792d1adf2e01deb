"""S3 multipart across accounts and processes: another account's upload id is
NoSuchUpload (its bucket AccessDenied); parts in signed aws-chunked bodies and
with boto3's trailing checksums over HTTPS; on a process cluster of two masters
sharing PostgreSQL, an upload created through one master takes parts
through both and is listed, completed and read through either."""

from __future__ import annotations

import hashlib
import io
import os
import secrets
import uuid

import boto3
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from echofs.testing.cluster import ProcessCluster
from echofs.testing.s3 import OPEN_KEY, OPEN_SECRET
from echofs.testing.signed_chunks import put_signed_chunks

MIB = 1024 * 1024


def _code(error: pytest.ExceptionInfo[ClientError]) -> str:
    return error.value.response["Error"]["Code"]


def _client_of_new_account(node):  # type: ignore[no-untyped-def]
    name = "u" + secrets.token_hex(4)
    token = node.rest("POST", "/api/v1/auth/register",
                      {"username": name, "password": "correct horse battery"})["token"]
    key = node.rest("POST", "/api/v1/auth/keys", {}, token=token)
    return node.client(key["access_key_id"], key["secret_access_key"])


def test_another_accounts_upload_is_no_such_upload(accounts_node):
    alice, bob = _client_of_new_account(accounts_node), _client_of_new_account(accounts_node)
    alices, bobs = "alice-" + secrets.token_hex(4), "bob-" + secrets.token_hex(4)
    alice.create_bucket(Bucket=alices)
    bob.create_bucket(Bucket=bobs)
    upload_id = alice.create_multipart_upload(Bucket=alices, Key="k")["UploadId"]
    alice.upload_part(Bucket=alices, Key="k", UploadId=upload_id, PartNumber=1, Body=b"a")
    # Through Bob's own bucket, Alice's upload id names nothing.
    with pytest.raises(ClientError) as refused:
        bob.list_parts(Bucket=bobs, Key="k", UploadId=upload_id)
    assert _code(refused) == "NoSuchUpload"
    with pytest.raises(ClientError) as refused:
        bob.abort_multipart_upload(Bucket=bobs, Key="k", UploadId=upload_id)
    assert _code(refused) == "NoSuchUpload"
    # Through Alice's bucket, Bob is refused before any upload is looked at.
    for call in (lambda: bob.list_parts(Bucket=alices, Key="k", UploadId=upload_id),
                 lambda: bob.upload_part(Bucket=alices, Key="k", UploadId=upload_id,
                                         PartNumber=2, Body=b"b"),
                 lambda: bob.list_multipart_uploads(Bucket=alices),
                 lambda: bob.create_multipart_upload(Bucket=alices, Key="x")):
        with pytest.raises(ClientError) as refused:
            call()
        assert _code(refused) == "AccessDenied"
    assert bob.list_multipart_uploads(Bucket=bobs).get("Uploads", []) == []
    parts = alice.list_parts(Bucket=alices, Key="k", UploadId=upload_id)["Parts"]
    assert [p["PartNumber"] for p in parts] == [1]


def _client(port: int):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id=OPEN_KEY, aws_secret_access_key=OPEN_SECRET,
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))


@pytest.fixture
def cluster(tmp_path, postgres_url, redis_url):  # type: ignore[no-untyped-def]
    env = {"DATABASE_URL": postgres_url, "REDIS_URL": redis_url,
           "REDIS_PREFIX": f"echofs-s3mp-{uuid.uuid4().hex[:8]}"}
    with ProcessCluster(tmp_path / "cluster", masters=2, env=env) as running:
        for master in range(2):
            running.wait_for_workers(3, master=master)
        yield running


def test_one_upload_through_two_masters(cluster):
    first, second = (_client(port) for port in cluster.s3_ports)
    first.create_bucket(Bucket="multi")
    upload_id = first.create_multipart_upload(Bucket="multi", Key="joined.bin",
                                              Metadata={"by": "two"})["UploadId"]
    bodies = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(MIB + 7)]
    etags = []
    for number, body in enumerate(bodies, 1):
        via = first if number % 2 else second
        etags.append(via.upload_part(Bucket="multi", Key="joined.bin", UploadId=upload_id,
                                     PartNumber=number, Body=body)["ETag"])
    assert [u["UploadId"] for u in second.list_multipart_uploads(Bucket="multi")["Uploads"]] \
        == [upload_id]
    assert [p["ETag"] for p in first.list_parts(Bucket="multi", Key="joined.bin",
                                                UploadId=upload_id)["Parts"]] == etags
    done = second.complete_multipart_upload(
        Bucket="multi", Key="joined.bin", UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e}
                                   for n, e in enumerate(etags, 1)]})
    digests = b"".join(hashlib.md5(b).digest() for b in bodies)
    assert done["ETag"] == f'"{hashlib.md5(digests).hexdigest()}-3"'
    got = first.get_object(Bucket="multi", Key="joined.bin")
    assert got["Body"].read() == b"".join(bodies)
    assert got["ETag"] == done["ETag"] and got["Metadata"] == {"by": "two"}
    # A retried complete, through the other master, answers the same object.
    again = first.complete_multipart_upload(
        Bucket="multi", Key="joined.bin", UploadId=upload_id,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": e}
                                   for n, e in enumerate(etags, 1)]})
    assert again["ETag"] == done["ETag"]


# -- aws-chunked parts -------------------------------------------------------------------------


def _put_signed_chunks(node, key_id: str, secret: str, path: str, data: bytes, *,  # type: ignore[no-untyped-def]
                       trailer: bool = False, tamper: int | None = None) -> tuple[int, bytes]:
    return put_signed_chunks(node.endpoint, node.s3_port, key_id, secret, path, data,
                             trailer=trailer, tamper=tamper)


@pytest.mark.parametrize("trailer", [False, True])
def test_parts_in_signed_chunks_are_verified(accounts_node, trailer):
    name = "c" + secrets.token_hex(4)
    token = accounts_node.rest("POST", "/api/v1/auth/register",
                               {"username": name, "password": "chunky password"})["token"]
    key = accounts_node.rest("POST", "/api/v1/auth/keys", {}, token=token)
    key_id, secret = key["access_key_id"], key["secret_access_key"]
    client = accounts_node.client(key_id, secret)
    bucket = "mp-chunks-" + secrets.token_hex(4)
    client.create_bucket(Bucket=bucket)
    upload_id = client.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    data = os.urandom(300_000)
    status, answer = _put_signed_chunks(
        accounts_node, key_id, secret, f"/{bucket}/k?partNumber=1&uploadId={upload_id}", data,
        trailer=trailer)
    assert status == 200, answer
    status, answer = _put_signed_chunks(
        accounts_node, key_id, secret, f"/{bucket}/k?partNumber=2&uploadId={upload_id}", data,
        trailer=trailer, tamper=2)
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in answer
    parts = client.list_parts(Bucket=bucket, Key="k", UploadId=upload_id)["Parts"]
    assert [(p["PartNumber"], p["ETag"]) for p in parts] == \
        [(1, f'"{hashlib.md5(data).hexdigest()}"')]


def test_boto3_default_trailing_checksum_on_parts_over_https(tls_node):
    """Over HTTPS boto3 sends each part aws-chunked with a trailing CRC32."""
    client = tls_node.client()
    sent: list[dict[str, str]] = []
    client.meta.events.register(
        "before-send.s3.UploadPart",
        lambda request, **_: sent.append({k.lower(): (v.decode() if isinstance(v, bytes)
                                                      else v)
                                          for k, v in request.headers.items()}))
    client.create_bucket(Bucket="mp-tls")
    body = os.urandom(6 * MIB)
    with io.BytesIO(body) as source:
        client.upload_fileobj(source, "mp-tls", "k", Config=TransferConfig(
            multipart_threshold=5 * MIB, multipart_chunksize=5 * MIB))
    assert len(sent) == 2
    assert all(s["x-amz-content-sha256"] == "STREAMING-UNSIGNED-PAYLOAD-TRAILER" and
               "aws-chunked" in s["content-encoding"] for s in sent)
    got = client.get_object(Bucket="mp-tls", Key="k")
    assert got["Body"].read() == body and got["ETag"].endswith('-2"')
