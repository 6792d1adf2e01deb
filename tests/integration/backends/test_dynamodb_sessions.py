"""Upload sessions and accounts on a process cluster of two masters sharing
DynamoDB (moto in server mode): an S3 multipart upload and a resumable
upload are each created through one master, take parts through both, are
completed once (a retried complete, through the other master, answers the
same version) and read through either. And accounts and access keys on
DynamoDB: names and addresses unique, keys signing S3 requests."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import aiohttp
import blake3
import boto3
import pytest
from botocore.config import Config

from echofs.client.aio import AsyncClient
from echofs.metadata import backends
from echofs.metadata.dynamodb.connection import Target
from echofs.testing import services
from echofs.testing.cluster import ProcessCluster
from echofs.testing.s3 import OPEN_KEY, OPEN_SECRET, S3Node, start_s3_node

MIB = 1024 * 1024


def _client(port: int):  # type: ignore[no-untyped-def]
    return boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                        aws_access_key_id=OPEN_KEY, aws_secret_access_key=OPEN_SECRET,
                        config=Config(s3={"addressing_style": "path"},
                                      retries={"max_attempts": 1}))


@pytest.fixture
def cluster(tmp_path, moto_server, redis_url) -> Iterator[ProcessCluster]:  # type: ignore[no-untyped-def]
    url = (f"dynamodb://?endpoint={moto_server.endpoint_url}&region=us-east-1"
           f"&prefix=mp{uuid.uuid4().hex[:8]}-")
    env = {"DATABASE_URL": url, "REDIS_URL": redis_url, "UPLOAD_PART_SIZE": str(MIB),
           "REDIS_PREFIX": f"echofs-s3mpd-{uuid.uuid4().hex[:8]}", **services.S3_TEST_ENV}
    with ProcessCluster(tmp_path / "cluster", masters=2, env=env) as running:
        for master in range(2):
            running.wait_for_workers(3, master=master)
        running.sessions_table = Target.from_url(url).tables["sessions"]  # type: ignore[attr-defined]
        running.dynamodb_endpoint = moto_server.endpoint_url  # type: ignore[attr-defined]
        yield running


@pytest.fixture
def accounts_node(tmp_path, moto_server, monkeypatch) -> Iterator[S3Node]:  # type: ignore[no-untyped-def]
    """One node (master and worker) with accounts on, its store in DynamoDB."""
    url = (f"dynamodb://?endpoint={moto_server.endpoint_url}&region=us-east-1"
           f"&prefix=ac{uuid.uuid4().hex[:8]}-")
    env = {"DATABASE_URL": url, "JWT_SECRET": "dynamodb-accounts-" + "x" * 30,
           **services.S3_TEST_ENV}
    for name, value in services.S3_TEST_ENV.items():
        monkeypatch.setenv(name, value)
    backends.upgrade(url)  # what ``echofs db upgrade`` does
    node = start_s3_node(tmp_path, env=env)
    node.accounts_table = Target.from_url(url).tables["accounts"]  # type: ignore[attr-defined]
    node.dynamodb_endpoint = moto_server.endpoint_url  # type: ignore[attr-defined]
    try:
        yield node
    finally:
        node.process.terminate()


def _dynamodb(endpoint: str):  # type: ignore[no-untyped-def]
    return boto3.client("dynamodb", endpoint_url=endpoint, region_name="us-east-1",
                        aws_access_key_id=services.S3_TEST_ENV["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=services.S3_TEST_ENV["AWS_SECRET_ACCESS_KEY"])


def _rest(url: str, method: str, path: str, body: dict | None = None,
          token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        f"{url}{path}", method=method,
        data=json.dumps(body).encode() if body is not None else None,
        headers={"Content-Type": "application/json",
                 **({"Authorization": f"Bearer {token}"} if token else {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read() or b"{}")
    except urllib.error.HTTPError as refused:
        return refused.code, json.loads(refused.read() or b"{}")


def test_one_upload_through_two_masters_on_dynamodb(cluster):
    first, second = (_client(port) for port in cluster.s3_ports)
    first.create_bucket(Bucket="multi")
    upload_id = first.create_multipart_upload(Bucket="multi", Key="joined.bin",
                                              Metadata={"by": "two"})["UploadId"]
    other = second.create_multipart_upload(Bucket="multi", Key="aborted.bin")["UploadId"]
    bodies = [os.urandom(5 * MIB), os.urandom(5 * MIB), os.urandom(MIB + 7)]
    etags = []
    for number, body in enumerate(bodies, 1):
        via = first if number % 2 else second
        etags.append(via.upload_part(Bucket="multi", Key="joined.bin", UploadId=upload_id,
                                     PartNumber=number, Body=body)["ETag"])
    listed = second.list_multipart_uploads(Bucket="multi")["Uploads"]
    assert [(u["Key"], u["UploadId"]) for u in listed] == [("aborted.bin", other),
                                                           ("joined.bin", upload_id)]
    first.abort_multipart_upload(Bucket="multi", Key="aborted.bin", UploadId=other)
    assert [p["ETag"] for p in first.list_parts(Bucket="multi", Key="joined.bin",
                                                UploadId=upload_id)["Parts"]] == etags
    parts = {"Parts": [{"PartNumber": n, "ETag": e} for n, e in enumerate(etags, 1)]}
    done = second.complete_multipart_upload(Bucket="multi", Key="joined.bin",
                                            UploadId=upload_id, MultipartUpload=parts)
    digests = b"".join(hashlib.md5(b).digest() for b in bodies)
    assert done["ETag"] == f'"{hashlib.md5(digests).hexdigest()}-3"'
    got = first.get_object(Bucket="multi", Key="joined.bin")
    assert got["Body"].read() == b"".join(bodies)
    assert got["ETag"] == done["ETag"] and got["Metadata"] == {"by": "two"}
    # A retried complete, through the other master, answers the same object.
    again = first.complete_multipart_upload(Bucket="multi", Key="joined.bin",
                                            UploadId=upload_id, MultipartUpload=parts)
    assert again["ETag"] == done["ETag"]
    assert second.list_multipart_uploads(Bucket="multi").get("Uploads", []) == []
    # The masters kept it in DynamoDB: the completed session's item names its version.
    item = _dynamodb(cluster.dynamodb_endpoint).get_item(TableName=cluster.sessions_table,
                           Key={"pk": {"S": f"S#{upload_id}"}, "sk": {"S": "SESSION"}})["Item"]
    assert (item["state"]["S"], item["version"]["N"]) == ("completed", "1")


async def test_one_resumable_upload_through_two_masters_on_dynamodb(cluster):
    data = os.urandom(6 * MIB + 777)
    parts = [data[i:i + MIB] for i in range(0, len(data), MIB)]
    first, second = cluster.urls
    async with AsyncClient(first) as a, AsyncClient(second) as b:
        session = await a.upload_init("shared/file.bin", len(data))
        sid = session["session_id"]
        # Odd parts through one master, even through the other, all at once.
        await asyncio.gather(*(
            (a if n % 2 else b).upload_part(sid, n, p, blake3=blake3.blake3(p).hexdigest())
            for n, p in enumerate(parts)))
        assert (await a.upload_status(sid))["received"] == list(range(len(parts)))
        done, again = await asyncio.gather(
            b.upload_complete(sid, blake3=blake3.blake3(data).hexdigest()),
            a.upload_complete(sid))
        assert (again.file_id, again.version) == (done.file_id, done.version)
    for url in (first, second):
        async with aiohttp.ClientSession() as http, \
                http.get(f"{url}/api/v1/files/content/shared/file.bin") as resp:
            assert resp.status == 200 and await resp.read() == data


def test_accounts_and_access_keys_on_dynamodb(accounts_node):
    first = second = accounts_node.process.url
    password = "correct horse battery"
    status, alice = _rest(first, "POST", "/api/v1/auth/register",
                          {"username": "alice", "password": password})
    assert status == 201 and alice["user"]["role"] == "admin"
    status, taken = _rest(second, "POST", "/api/v1/auth/register",
                          {"username": "alice", "password": password})
    assert status == 409 and taken["error"]["code"] == "username_taken"
    status, bob = _rest(second, "POST", "/api/v1/auth/register",
                        {"username": "bob", "password": password, "email": "Bob@example.com"})
    assert status == 201 and bob["user"]["role"] == "user"
    status, taken = _rest(first, "POST", "/api/v1/auth/register",
                          {"username": "carol", "password": password,
                           "email": "bob@EXAMPLE.com"})
    assert status == 409 and taken["error"]["code"] == "email_taken"
    status, login = _rest(first, "POST", "/api/v1/auth/login",
                          {"username": "bob@example.com", "password": password})
    assert status == 200 and login["user"]["username"] == "bob"
    status, key = _rest(second, "POST", "/api/v1/auth/keys", {}, token=login["token"])
    assert status in (200, 201)
    status, keys = _rest(first, "GET", "/api/v1/auth/keys", token=login["token"])
    assert status == 200 and [k["access_key_id"] for k in keys["keys"]] == [
        key["access_key_id"]]
    s3 = accounts_node.client(key["access_key_id"], key["secret_access_key"])
    s3.create_bucket(Bucket="bobs")
    s3.put_object(Bucket="bobs", Key="k", Body=b"by key")
    assert s3.get_object(Bucket="bobs", Key="k")["Body"].read() == b"by key"
    # The last admin stays.
    status, refused = _rest(second, "PATCH", "/api/v1/auth/users/alice", {"role": "user"},
                            token=alice["token"])
    assert status == 409 and refused["error"]["code"] == "last_admin"
    # The accounts are DynamoDB's: the name's marker names alice's account.
    marker = _dynamodb(accounts_node.dynamodb_endpoint).get_item(
        TableName=accounts_node.accounts_table,
        Key={"pk": {"S": "N#alice"}, "sk": {"S": "NAME"}})["Item"]
    assert marker["user_id"]["S"] == alice["user"]["id"]
